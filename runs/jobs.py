"""Job folders: what a run's sandbox sees (code, train and dev splits, a spec), the sandbox
the engine runs in, and their pruning.

A job folder lives on the worker's local disk under ACADEMY_JOBS_DIR, named by the
submission's id. The held-out split is never written here: the grader reads it
from the database, outside the sandbox. (The serving stage's folders, which hold
the held-out texts, live apart under SERVING_DIR: runs/serving.py.)
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

import labs.training
from labs.models import Example, Lab, Submission
from labs.training.data import stratified_split, stratified_subset, write_csv
from labs.training.spec import RunSpec
from sandbox import Limits, SandboxMode, SandboxPolicy

logger = logging.getLogger(__name__)

# Where the sandbox mounts the job folder and the base model (the engine reads the spec's paths).
JOB_MOUNT = "/job"
MODEL_MOUNT = "/model"
# Under ACADEMY_JOBS_DIR: never a submission's id, so no job folder and no pruning by id.
SERVING_DIR = "serving"
# Below this much free space (or 2%) a failed write in a job folder is the worker's fault.
DISK_FULL_BYTES = 64 * 1024 * 1024


def job_dir_for(submission: Submission) -> Path:
    return Path(settings.ACADEMY_JOBS_DIR) / f"{submission.pk}"


def job_write(submission: Submission) -> Path:
    """A fresh job folder for this run (a second delivery starts again from nothing)."""
    lab = submission.lab
    job_dir = job_dir_for(submission)
    if job_dir.exists():
        shutil.rmtree(job_dir)
    job_dir.mkdir(parents=True, mode=0o700)
    rows = list(
        Example.objects.filter(dataset=lab.dataset, split=Example.Split.TRAIN)
        .order_by("position")
        .values_list("text", "label")
    )
    if lab.train_subset_size and lab.train_subset_size < len(rows):
        rows = stratified_subset(rows, lab.train_subset_size, lab.subset_seed)
    train, dev = stratified_split(rows, lab.dev_fraction, lab.subset_seed)
    write_csv(job_dir / "train.csv", train)
    write_csv(job_dir / "dev.csv", dev)
    (job_dir / "solution.py").write_text(submission.code, encoding="utf-8")
    RunSpec(
        base_model=MODEL_MOUNT,
        code_file=f"{JOB_MOUNT}/solution.py",
        train_file=f"{JOB_MOUNT}/train.csv",
        dev_file=f"{JOB_MOUNT}/dev.csv",
        labels=list(lab.dataset.labels),
        output_dir=f"{JOB_MOUNT}/checkpoint",
        max_epochs=lab.max_epochs,
        threads=settings.ACADEMY_TRAINING_THREADS,
        max_trainable_share=lab.max_trainable_share,
        fixed_hyperparameters=dict(lab.fixed_hyperparameters),
    ).to_json(job_dir / "spec.json")
    return job_dir


def engine_policy(
    lab: Lab, job_dir: Path, *, wall_seconds: int, ro_binds: Mapping[str, str] | None = None
) -> SandboxPolicy:
    """The sandbox a stage of this lab's run gets: the engine read-only at /code, `job_dir`
    at /job, the lab's memory, the worker's thread count, and `ro_binds` besides."""
    threads = settings.ACADEMY_TRAINING_THREADS
    engine_dir = Path(labs.training.__file__).resolve().parent
    return SandboxPolicy(
        mode=SandboxMode(settings.ACADEMY_SANDBOX_MODE),
        limits=Limits(
            wall_seconds=wall_seconds,
            cpu_seconds=wall_seconds * max(1, threads) + 60,
            memory_mb=lab.memory_mb,
            disk_mb=settings.ACADEMY_JOB_DISK_MB,
        ),
        job_dir=str(job_dir),
        ro_binds={str(engine_dir): "/code/labs/training", **(ro_binds or {})},
        env={"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)},
        cwd_inside="/code",
        memory_cgroup_parent=settings.ACADEMY_SANDBOX_CGROUP_PARENT,
        pids_cgroup_parent=settings.ACADEMY_SANDBOX_PIDS_CGROUP_PARENT,
        uid_range=settings.ACADEMY_SANDBOX_UID_RANGE,
    )


def engine_argv(*args: str) -> list[str]:
    """`python -m labs.training ARGS` with the worker's own interpreter."""
    return [sys.executable, "-m", "labs.training", *args]


def disk_nearly_full(path: Path) -> bool:
    usage = shutil.disk_usage(path)
    return usage.free < max(DISK_FULL_BYTES, usage.total // 50)


@dataclass(frozen=True)
class PruneReport:
    removed: list[int]
    kept_active: int
    bytes_freed: int


def jobs_prune(*, older_than: datetime.timedelta, dry_run: bool = False) -> PruneReport:
    """Remove the job folders of runs that ended more than `older_than` ago.

    A folder whose run is still queued or running is never touched; a folder with
    no row at all (a deleted submission, a folder copied in by hand) goes by its
    modification time. A graded run's checkpoint goes with its folder, after which
    it can no longer be re-graded without training again. So does any serving folder
    of the run's (runs/serving.py removes its own; a worker killed mid-stage cannot).
    """
    root = Path(settings.ACADEMY_JOBS_DIR)
    if not root.is_dir():
        return PruneReport(removed=[], kept_active=0, bytes_freed=0)
    cutoff = timezone.now() - older_than
    folders = {int(p.name): p for p in root.iterdir() if p.is_dir() and p.name.isdigit()}
    rows = dict(
        Submission.objects.filter(pk__in=folders).values_list("pk", "finished_at").iterator()
    )
    active = set(
        Submission.objects.filter(pk__in=folders, status__in=Submission.ACTIVE).values_list(
            "pk", flat=True
        )
    )
    removed, freed = [], 0
    for pk, folder in sorted(folders.items()):
        if pk in active:
            continue
        if pk in rows:
            ended = rows[pk]
        else:
            ended = datetime.datetime.fromtimestamp(folder.stat().st_mtime, tz=datetime.UTC)
        if ended is None or ended >= cutoff:
            continue
        for path in [folder, *(root / SERVING_DIR).glob(f"{pk}-*")]:
            freed += _folder_bytes(path)
            if not dry_run:
                shutil.rmtree(path, ignore_errors=True)
        removed.append(pk)
    if removed and not dry_run:
        logger.info("Pruned %s job folder(s), %s bytes", len(removed), freed)
    return PruneReport(removed=removed, kept_active=len(active), bytes_freed=freed)


def _folder_bytes(folder: Path) -> int:
    # os.walk and lstat follow no link: one the learner planted counts as a link.
    total = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(parent, name)).st_size
    return total
