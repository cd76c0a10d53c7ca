"""Job folders: what a run's sandbox sees (code, train and dev splits, a spec), the sandbox
the engine runs in, and their pruning.

A job folder lives on the worker's local disk under ACADEMY_JOBS_DIR, named by the
submission's id. The held-out split is never written here: the grader reads it
from the database, outside the sandbox. (The serving stage's folders, which hold
the held-out texts, live apart under SERVING_DIR: runs/serving.py.) Once a run has
ended its folder is tidied on the worker that ran it (jobs_tidy): a graded run keeps
only its checkpoint, for re-grading, for ACADEMY_JOB_RETENTION_DAYS; any other run
keeps nothing.
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
from grading.evaluation import CHECKPOINT_DIR
from labs.models import Example, Lab, Submission
from labs.training.base_models import resolve_base_model
from labs.training.data import stratified_split, stratified_subset, write_csv
from labs.training.precision import default_device_type, resolve_precision
from labs.training.spec import RunSpec
from sandbox import Limits, SandboxMode, SandboxPolicy, nvidia_device_nodes

logger = logging.getLogger(__name__)

# Where the sandbox mounts the job folder and the base model (the engine reads the spec's paths).
JOB_MOUNT = "/job"
MODEL_MOUNT = "/model"
# Under ACADEMY_JOBS_DIR: never a submission's id, so no job folder and no pruning by id.
SERVING_DIR = "serving"
# Below this much free space (or 2%) a failed write in a job folder is the worker's fault.
DISK_FULL_BYTES = 64 * 1024 * 1024
# How much of a run's output its learner is shown: the end, where the error is.
LOG_TAIL_CHARS = 8000


def job_dir_for(submission: Submission) -> Path:
    return Path(settings.ACADEMY_JOBS_DIR) / f"{submission.pk}"


def training_precision() -> str:
    """The number format this worker trains in (ACADEMY_TRAINING_PRECISION, "auto" resolved
    for this machine's hardware): decided here, on the host, and recorded on the row, so the
    run page never takes it from the learner's process."""
    return resolve_precision(settings.ACADEMY_TRAINING_PRECISION, default_device_type())


def job_write(submission: Submission, *, precision: str = "fp32") -> Path:
    """A fresh job folder for this run (a second delivery starts again from nothing)."""
    lab = submission.lab
    job_dir = job_dir_for(submission)
    if job_dir.exists():
        shutil.rmtree(job_dir)
    job_dir.mkdir(parents=True, mode=0o700)
    train, dev = training_rows(lab)
    write_csv(job_dir / "train.csv", train)
    write_csv(job_dir / "dev.csv", dev)
    (job_dir / "solution.py").write_text(submission.code, encoding="utf-8")
    run_spec(lab, precision=precision).to_json(job_dir / "spec.json")
    return job_dir


def training_rows(lab: Lab) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The (train, dev) rows a run of this lab trains and tunes on (the precheck's too)."""
    rows = _split_rows(lab, Example.Split.TRAIN)
    if lab.train_subset_size and lab.train_subset_size < len(rows):
        rows = stratified_subset(rows, lab.train_subset_size, lab.subset_seed)
    # A dataset with its own dev rows (CLINC150's validation split, which has the
    # out-of-scope queries a carved share of 30 would not) is tuned on them as they are.
    dev = _split_rows(lab, Example.Split.DEV)
    if not dev:
        return stratified_split(rows, lab.dev_fraction, lab.subset_seed)
    return rows, dev


def run_spec(lab: Lab, *, precision: str = "fp32") -> RunSpec:
    """The engine's spec for a run of this lab, with the job folder and model at their mounts,
    training in `precision` (the worker decides it: training_precision)."""
    return RunSpec(
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
        precision=precision,
    )


def _split_rows(lab: Lab, split: str) -> list[tuple[str, str]]:
    return list(
        Example.objects.filter(dataset=lab.dataset, split=split)
        .order_by("position")
        .values_list("text", "label")
    )


def engine_policy(
    lab: Lab,
    job_dir: Path,
    *,
    wall_seconds: int,
    ro_binds: Mapping[str, str] | None = None,
    gpu: bool = False,
) -> SandboxPolicy:
    """The sandbox a stage of this lab's run gets: the engine read-only at /code, `job_dir`
    at /job, the lab's memory, the worker's thread count, and `ro_binds` besides; with
    `gpu`, this machine's GPU device nodes (none on a CPU worker)."""
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
        devices=nvidia_device_nodes() if gpu else (),
    )


def engine_argv(*args: str) -> list[str]:
    """`python -m labs.training ARGS` with the worker's own interpreter."""
    return [sys.executable, "-m", "labs.training", *args]


def learner_log(text: str, lab: Lab) -> str:
    """The end of a run's output as its learner may read it, the worker's own paths replaced
    by names. Inside the sandbox nothing is at its host path, but the mount table
    (/proc/self/mountinfo) names each bind's host source, and learner code may print it."""
    named = [
        (str(settings.ACADEMY_JOBS_DIR), "<jobs>"),
        (str(settings.BASE_DIR), "<academy>"),
        (sys.prefix, "<python>"),
        (sys.base_prefix, "<python>"),
    ]
    with contextlib.suppress(ValueError):  # a model folder gone since: nothing of it to hide
        named.append((resolve_base_model(lab.base_model), MODEL_MOUNT))
    # The mount table has each bind's real path; a message may have the configured one.
    hidden = {os.path.realpath(path): name for path, name in named} | dict(named)
    # Longest first, so a path inside another (the virtualenv in the project) goes whole.
    for path in sorted(hidden, key=len, reverse=True):
        text = text.replace(path, hidden[path])
    return text[-LOG_TAIL_CHARS:]


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


# --------------------------------------------------------------------------
# What a worker keeps, and the room it has


@dataclass(frozen=True)
class TidyReport:
    trimmed: list[int]  # graded: all but the checkpoint removed
    removed: list[int]  # the whole folder: ended ungraded, past retention, or no row
    kept_active: int
    bytes_freed: int


def jobs_tidy(*, retention: datetime.timedelta, dry_run: bool = False) -> TidyReport:
    """Keep of the job folders only what can still be used: a graded run's checkpoint (a
    re-grade reads it), until `retention` after the run ended. A run that ended any other
    way (error, failed, rejected, cancelled) can never be re-graded: its folder goes at
    once. Folders of runs still queued or running are never touched.

    A worker calls it after each run and at start-up: job folders live on the disk of
    the worker that ran them, so no central job can clean them."""
    root = Path(settings.ACADEMY_JOBS_DIR)
    if not root.is_dir():
        return TidyReport(trimmed=[], removed=[], kept_active=0, bytes_freed=0)
    pruned = jobs_prune(older_than=retention, dry_run=dry_run)
    folders = {int(p.name): p for p in root.iterdir() if p.is_dir() and p.name.isdigit()}
    statuses = dict(
        Submission.objects.filter(pk__in=set(folders) - set(pruned.removed))
        .exclude(status__in=Submission.ACTIVE)
        .values_list("pk", "status")
        .iterator()
    )
    trimmed, removed, freed = [], [], 0
    for pk, status in sorted(statuses.items()):
        folder = folders[pk]
        if status == Submission.Status.GRADED:
            extra = [p for p in folder.iterdir() if p.name != CHECKPOINT_DIR]
            if extra:
                freed += sum(_path_bytes(p) for p in extra)
                trimmed.append(pk)
                if not dry_run:
                    for path in extra:
                        _remove(path)
        else:
            freed += _folder_bytes(folder)
            removed.append(pk)
            if not dry_run:
                shutil.rmtree(folder, ignore_errors=True)
    if (trimmed or removed) and not dry_run:
        logger.info(
            "Tidied job folders: %s trimmed to their checkpoint, %s removed", trimmed, removed
        )
    return TidyReport(
        trimmed=trimmed,
        removed=sorted({*removed, *pruned.removed}),
        kept_active=pruned.kept_active,
        bytes_freed=freed + pruned.bytes_freed,
    )


def jobs_retention() -> datetime.timedelta:
    return datetime.timedelta(days=settings.ACADEMY_JOB_RETENTION_DAYS)


def jobs_disk_free() -> int:
    """Bytes free on the worker's disk for job folders (not a run's own quota)."""
    root = Path(settings.ACADEMY_JOBS_DIR)
    root.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(root).free


def jobs_disk_has_room() -> bool:
    """Whether this worker may claim a run: a run's files come back to this disk when it
    ends (up to its quota), and the database may share it."""
    return jobs_disk_free() >= settings.ACADEMY_JOBS_MIN_FREE_MB * 1024 * 1024


@dataclass(frozen=True)
class JobsUsage:
    folders: int
    bytes_held: int
    disk_free: int
    disk_total: int


def jobs_usage() -> JobsUsage:
    """What the job folders hold on this worker's disk (sandbox_check prints it)."""
    root = Path(settings.ACADEMY_JOBS_DIR)
    root.mkdir(parents=True, exist_ok=True)
    folders = [p for p in root.iterdir() if p.is_dir() and p.name.isdigit()]
    usage = shutil.disk_usage(root)
    return JobsUsage(
        folders=len(folders),
        bytes_held=sum(_folder_bytes(folder) for folder in folders),
        disk_free=usage.free,
        disk_total=usage.total,
    )


def _path_bytes(path: Path) -> int:
    return _folder_bytes(path) if path.is_dir() and not path.is_symlink() else _lstat_size(path)


def _lstat_size(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _remove(path: Path) -> None:
    # Never following a link the learner planted: rmtree on a real folder, unlink otherwise.
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
