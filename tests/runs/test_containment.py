"""One learner's run cannot hurt another's or the worker's disk, through the real pipeline:
the job folder, the sandbox, the engine and the grader (tiny BERT).

A run that reaches its own limit (its job folder's quota, its processes) ends `error`
with a message naming the limit, and uses an attempt: the host saw the limit hit, so
it is the learner's doing whatever their code or the engine then reported.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from labs.models import Submission
from runs.pipeline import submission_run
from sandbox import Capabilities, Limits, SandboxMode, detect_capabilities, run_sandboxed
from tests.conftest import TINY_SOLUTION
from tests.sandbox.conftest import VENV_PYTHON
from tests.sandbox.test_quotas import HOLDING_BOMB

MB = 1024 * 1024


@pytest.fixture(scope="module")
def caps() -> Capabilities:
    found = detect_capabilities()
    if not found.full:
        pytest.skip("the strict sandbox cannot run here: " + found.describe())
    return found


@pytest.fixture
def worker_disk(settings, tmp_path, caps) -> Path:
    """The worker's disk for job folders: a 256 MB file system of its own, so its free
    space moves only with what these runs write (root only)."""
    if not caps.job_quota:
        pytest.skip("no job folder quota here (needs root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "disk", str(disk)], check=True)
    settings.ACADEMY_JOBS_DIR = disk / "jobs"
    settings.ACADEMY_TRAINING_THREADS = 1
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _run(learner, lab, code: str) -> Submission:
    submission = Submission.objects.create(learner=learner, lab=lab, code=code)
    submission_run(submission_id=submission.pk, worker="test")
    submission.refresh_from_db()
    return submission


# Fills the job folder with 1 MB files, swallows the error and trains: the engine's own
# checkpoint is then what finds the folder full, as in the issue (49 x 8 MB, then ENOSPC).
FILLS_THE_JOB_FOLDER = (
    """
import os
os.makedirs("/job/junk", exist_ok=True)
try:
    for n in range(100_000):
        with open(f"/job/junk/{n}.bin", "wb") as out:
            out.write(os.urandom(1 << 20))
except OSError:
    pass
"""
    + TINY_SOLUTION
)


def test_a_run_that_fills_its_job_folder_ends_error_and_the_workers_disk_holds_its_quota_at_most(
    db, learner, lab, settings, worker_disk
):
    settings.ACADEMY_JOB_DISK_MB = 32
    free_before = shutil.disk_usage(worker_disk).free

    submission = _run(learner, lab, FILLS_THE_JOB_FOLDER)

    assert submission.status == Submission.Status.ERROR, submission.error_message
    assert submission.counts_as_attempt
    assert submission.platform_retries == 0
    assert submission.error_message.startswith("Your run wrote more than its 32 MB of disk")
    # The other 224 MB of the worker's disk stayed free: the run wrote into its own quota,
    # and at most the quota came back once it ended.
    fell = free_before - shutil.disk_usage(worker_disk).free
    assert fell <= 32 * MB + MB, f"the worker's disk fell by {fell / MB:.1f} MB"


STARTS_THREADS_WITHOUT_END = (
    """
import threading, time
for _ in range(1000):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
"""
    + TINY_SOLUTION
)


def test_a_run_that_hits_its_own_process_limit_ends_error_and_says_so(
    db, learner, lab, settings, tmp_path, caps
):
    if caps.process_enforcement(strict=True) == "shared_uid":
        pytest.skip("no process limit of its own per run here")
    settings.ACADEMY_JOBS_DIR = tmp_path / "jobs"
    settings.ACADEMY_TRAINING_THREADS = 1

    submission = _run(learner, lab, STARTS_THREADS_WITHOUT_END)

    assert submission.status == Submission.Status.ERROR, submission.error_message
    assert submission.counts_as_attempt
    assert submission.error_message.startswith(
        "Your run tried to start more than its 64 processes and threads"
    )


@contextlib.contextmanager
def another_run_fork_bombing(caps: Capabilities, folder: Path) -> Iterator[None]:
    """Another learner's sandbox, holding every process its run may have (64), all as the
    sandbox's uid, for as long as the block runs."""
    bomb_job = folder / "bomb"
    bomb_job.mkdir()
    (bomb_job / "main.py").write_text(HOLDING_BOMB)
    holding, done = threading.Event(), threading.Event()

    def run_bomb() -> None:
        run_sandboxed(
            argv=[VENV_PYTHON, "-I", "/job/main.py"],
            job_dir=str(bomb_job),
            limits=Limits(wall_seconds=300, cpu_seconds=300, memory_mb=512),
            mode=SandboxMode.STRICT,
            on_stdout_line=lambda line: holding.set(),
            should_stop=done.is_set,
            poll_seconds=0.1,
            capabilities=caps,
        )
        holding.set()

    thread = threading.Thread(target=run_bomb)
    thread.start()
    try:
        assert holding.wait(60)
        yield
    finally:
        done.set()
        thread.join(60)


def test_a_fork_bomb_in_another_learners_run_does_not_fail_an_ordinary_run(
    db, learner, lab, settings, tmp_path, caps
):
    settings.ACADEMY_JOBS_DIR = tmp_path / "jobs"
    settings.ACADEMY_TRAINING_THREADS = 1

    with another_run_fork_bombing(caps, tmp_path):
        submission = _run(learner, lab, TINY_SOLUTION)

    assert submission.status == Submission.Status.GRADED, submission.error_message
    assert submission.platform_retries == 0
