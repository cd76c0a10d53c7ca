"""Faults outside the worker: the job folder's disk fills, the broker restarts, the database
goes away or hangs, and learner code that ignores SIGTERM.

The sandbox's own SIGTERM test (`tests/sandbox/test_containment.py::
test_program_that_ignores_sigterm_is_killed_after_the_grace_period`) shows the kill; the
one here shows the worker around it carries on with the next run.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from grading.models import Grade
from labs.models import Submission
from labs.selectors import attempts_used_today
from labs.services.submissions import submission_create
from tests.conftest import TINY_SOLUTION, Worker, _worker_database_url, wait_for
from tests.factories import UserFactory
from tests.faults.conftest import (
    FAULT_SOLUTION,
    FAULT_TRIALS,
    TcpProxy,
    TrialRecord,
    fresh,
    rng_for,
    wait_final,
)

pytestmark = pytest.mark.django_db(transaction=True)


def one_grade(submission: Submission) -> int:
    return Grade.objects.filter(submission=submission).count()


# --- the job folder's disk is full ------------------------------------------------------------


@pytest.fixture
def small_job_disk(worker) -> Path:
    """An 8 MB tmpfs mounted over the worker's job folder (root only)."""
    jobs = worker.jobs_dir
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(jobs)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for the job folder: {mounted.stderr.strip()}")
    yield jobs
    subprocess.run(["umount", "-l", str(jobs)], check=False)


def fill(folder: Path, leave_bytes: int) -> Path:
    """A ballast file that leaves about `leave_bytes` free: the job files fit, a checkpoint not."""
    import shutil

    ballast = folder / "ballast"
    free = shutil.disk_usage(folder).free
    with ballast.open("wb") as out:
        out.write(b"\0" * max(0, free - leave_bytes))
    return ballast


def test_a_full_job_disk_is_a_platform_fault_retried_once_space_returns(
    worker, small_job_disk, fault_lab, learner, fault_log
):
    ballast = fill(small_job_disk, leave_bytes=512 * 1024)
    submission = submission_create(learner=learner, lab=fault_lab, code=TINY_SOLUTION)
    wait_for(
        lambda: fresh(submission).platform_retries >= 1 or submission.status in Submission.FINAL,
        timeout=120,
        interval=0.1,
        message=lambda: f"a platform retry\n{worker.log()}",
    )
    assert submission.status == Submission.Status.QUEUED, submission.error_message
    ballast.unlink()  # an operator frees space before the retry (sent 5 s later) runs
    freed = time.monotonic()
    wait_final(submission, [worker])
    fault_log.add(
        TrialRecord(
            fault="job disk full (freed)",
            trial=0,
            submissions=1,
            lost=int(one_grade(submission) == 0),
            duplicated=max(0, one_grade(submission) - 1),
            recovered_s=time.monotonic() - freed,
            detail=submission.status,
        )
    )
    assert submission.status == Submission.Status.GRADED, (submission.error_message, worker.log())
    assert one_grade(submission) == 1
    assert attempts_used_today(learner=learner, lab=fault_lab) == 1  # the failed try was free


def test_a_job_disk_that_stays_full_fails_cleanly_without_costing_an_attempt(
    worker, small_job_disk, fault_lab, learner, fault_log
):
    fill(small_job_disk, leave_bytes=512 * 1024)
    submission = submission_create(learner=learner, lab=fault_lab, code=TINY_SOLUTION)
    wait_final(submission, [worker])
    fault_log.add(
        TrialRecord(
            fault="job disk full (stays full)",
            trial=0,
            submissions=1,
            lost=0,
            duplicated=0,
            recovered_s=None,
            detail=f"{submission.status} after {submission.platform_retries} retries",
        )
    )
    assert submission.status == Submission.Status.FAILED
    assert submission.platform_retries == 2
    assert not submission.counts_as_attempt
    assert "not your fault; no attempt" in submission.error_message
    assert "disk is full" in submission.error_message
    assert attempts_used_today(learner=learner, lab=fault_lab) == 0
    assert one_grade(submission) == 0


# --- the broker restarts and forgets every message ---------------------------------------------


def _broker_trial(trial, redis, solo, lab, fault_log) -> list[str]:
    rng = rng_for("broker", trial)
    first = submission_create(
        learner=UserFactory(username=f"b{trial}a"), lab=lab, code=FAULT_SOLUTION
    )
    second = submission_create(
        learner=UserFactory(username=f"b{trial}b"), lab=lab, code=TINY_SOLUTION
    )
    wait_for(lambda: fresh(first).total_steps > 0, timeout=90, interval=0.05, message=solo.log)
    target = rng.randint(1, max(1, first.total_steps - 2))
    wait_for(lambda: fresh(first).step >= target, timeout=90, interval=0.05, message=solo.log)
    redis.kill()  # the queued run's wake-up and the running one's unacked message are gone
    time.sleep(rng.uniform(0.5, 3))
    redis.start()
    for run in (first, second):
        wait_final(run, [solo])
    # The stall: the worker was free, yet the second run waited for the sweep's new wake-up.
    recovered = max(
        0.0, (second.started_at - max(first.finished_at, second.created_at)).total_seconds()
    )
    grades = [one_grade(first), one_grade(second)]
    fault_log.add(
        TrialRecord(
            fault="broker (Redis) restart, no persistence",
            trial=trial,
            submissions=2,
            lost=grades.count(0),
            duplicated=sum(max(0, g - 1) for g in grades),
            recovered_s=recovered,
            detail=f"{first.status}/{second.status}",
        )
    )
    return [
        f"#{run.pk} {run.status} {grade} grades"
        for run, grade in zip((first, second), grades, strict=True)
        if run.status != Submission.Status.GRADED or grade != 1
    ]


def test_a_broker_restart_that_loses_every_message_loses_no_run(
    transactional_db, private_redis, tmp_path, settings, fault_lab, fault_log
):
    settings.ACADEMY_JOBS_DIR = tmp_path / "jobs"
    settings.ACADEMY_JOBS_DIR.mkdir()
    solo = Worker(
        settings.ACADEMY_JOBS_DIR,
        tmp_path / "worker.log",
        env={"CELERY_BROKER_URL": private_redis.url},
    )
    solo.start()
    try:
        problems = []
        for trial in range(FAULT_TRIALS):
            problems += _broker_trial(trial, private_redis, solo, fault_lab, fault_log)
        assert problems == [], solo.log()
    finally:
        solo.kill()


# --- the database goes away while the worker reports progress ----------------------------------


def _database_trial(trial, proxy, solo, lab, learner, fault_log) -> list[str]:
    rng = rng_for("database", trial)
    submission = submission_create(learner=learner, lab=lab, code=FAULT_SOLUTION)
    wait_for(lambda: fresh(submission).step > 0, timeout=90, interval=0.05, message=solo.log)
    time.sleep(rng.uniform(0, 1.5))
    proxy.cut()
    outage = rng.choice([1.5, 3.0, 9.0, 12.0])  # below and above the 8 s stale limit
    time.sleep(outage)
    proxy.restore()
    return _after_the_database_is_back(
        submission,
        solo,
        fault_log,
        trial=trial,
        fault="database cut (proxy) mid-training",
        detail=f"{outage}s outage",
    )


def _after_the_database_is_back(
    submission: Submission,
    solo: Worker,
    fault_log,
    *,
    trial: int,
    fault: str,
    detail: str,
) -> list[str]:
    """Time until the run shows life again (a heartbeat or a new claim), wait for its end,
    record the trial; the problems, if it did not end graded exactly once."""
    back, back_wall = time.monotonic(), timezone.now()
    start_deliveries = submission.deliveries
    wait_for(
        lambda: (
            (fresh(submission).heartbeat_at or back_wall) > back_wall
            or submission.deliveries > start_deliveries
            or submission.status in Submission.FINAL
        ),
        timeout=60,
        interval=0.1,
        message=solo.log,
    )
    recovered = time.monotonic() - back
    wait_final(submission, [solo])
    grades = one_grade(submission)
    fault_log.add(
        TrialRecord(
            fault=fault,
            trial=trial,
            submissions=1,
            lost=int(grades == 0),
            duplicated=max(0, grades - 1),
            recovered_s=recovered,
            detail=f"{detail}; {submission.status}; deliveries {submission.deliveries}",
        )
    )
    if submission.status != Submission.Status.GRADED or grades != 1:
        return [f"#{submission.pk} {submission.status} {submission.error_message}"]
    return []


@pytest.fixture
def proxied_worker(transactional_db, tmp_path, settings) -> Iterator[tuple[TcpProxy, Worker]]:
    """A worker whose database connections all go through a TcpProxy (this process's do not)."""
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL (run with DATABASE_URL=postgres://…): SQLite is a local file, "
            "there is no connection to cut or hang"
        )
    db = connection.settings_dict
    proxy = TcpProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    url = _worker_database_url().replace(f":{db['PORT'] or 5432}/", f":{proxy.port}/")
    settings.ACADEMY_JOBS_DIR = tmp_path / "jobs"
    settings.ACADEMY_JOBS_DIR.mkdir()
    solo = Worker(settings.ACADEMY_JOBS_DIR, tmp_path / "worker.log", env={"DATABASE_URL": url})
    solo.start()
    yield proxy, solo
    solo.kill()
    proxy.close()


def test_a_database_outage_during_training_ends_graded_never_stuck_running(
    proxied_worker, fault_lab, learner, fault_log
):
    proxy, solo = proxied_worker
    problems = []
    for trial in range(FAULT_TRIALS):
        problems += _database_trial(trial, proxy, solo, fault_lab, learner, fault_log)
    assert problems == [], solo.log()


# --- the database hangs: packets stop, nothing closes -----------------------------------------

# Every freeze outlasts the worker's call deadline (3 s in the tests). The short ones end
# about when the worker would let the run go (the deadline, then the 8 s stale limit of
# failed reconnects): mostly it trains on. The long ones outlast that: it stops the run,
# and the sweep has it run again once the database answers. The first four thaws let the
# held traffic through (a partition that heals), the next four cut it (a server restart).
HANG_SECONDS = (14.0, 6.0, 20.0, 7.0)
# The tiny model trains in about 2 s, before a hang is even noticed: this one takes about
# 20 s (42 steps of 0.5 s, asleep: no CPU taken from the shared box), so the worker gives
# up while training.
HANG_SOLUTION = FAULT_SOLUTION.replace('"batch_size": 16', '"batch_size": 8') + (
    "\nimport time\n"
    "import torch.nn.functional as F\n"
    "\n"
    "def training_step(model, batch, hp):\n"
    "    time.sleep(0.5)\n"
    "    out = model(input_ids=batch['input_ids'], attention_mask=batch['attention_mask'])\n"
    "    return F.cross_entropy(out.logits, batch['labels'])\n"
)


def _hang_trial(trial, proxy, solo, lab, learner, fault_log) -> list[str]:
    rng = rng_for("database hang", trial)
    hang = HANG_SECONDS[trial % len(HANG_SECONDS)]
    cut = (trial // len(HANG_SECONDS)) % 2 == 1
    submission = submission_create(learner=learner, lab=lab, code=HANG_SOLUTION)
    wait_for(lambda: fresh(submission).step > 0, timeout=90, interval=0.05, message=solo.log)
    time.sleep(rng.uniform(0, 1.5))
    at = fresh(submission)
    landed = f"{at.phase} step {at.step}/{at.total_steps}"
    dialled = proxy.accepted
    proxy.freeze()
    frozen = time.monotonic()
    # Nothing answers and nothing closes; the only way a new connection shows up here is
    # the worker giving up on its hung call and dialling again.
    wait_for(
        lambda: proxy.accepted > dialled,
        timeout=hang,
        interval=0.05,
        message=lambda: f"the worker to give up its hung database call\n{solo.log()}",
    )
    gave_up = time.monotonic() - frozen
    time.sleep(max(0.0, frozen + hang - time.monotonic()))
    proxy.thaw(cut=cut)
    proxy.restore()
    return _after_the_database_is_back(
        submission,
        solo,
        fault_log,
        trial=trial,
        fault="database hang (proxy) mid-training",
        detail=f"{hang}s hang from {landed}, thawed by {'cut' if cut else 'resume'}; "
        f"gave up after {gave_up:.1f}s",
    )


def test_a_database_that_hangs_during_training_ends_graded_never_stuck_running(
    proxied_worker, fault_lab, learner, fault_log
):
    proxy, solo = proxied_worker
    problems = []
    for trial in range(FAULT_TRIALS):
        problems += _hang_trial(trial, proxy, solo, fault_lab, learner, fault_log)
    assert problems == [], solo.log()


# --- learner code that ignores SIGTERM -----------------------------------------------------------


def test_learner_code_that_ignores_sigterm_is_killed_and_the_worker_runs_the_next_one(
    worker, fault_lab, learner, fault_log
):
    fault_lab.wall_time_seconds = 6
    fault_lab.save()
    stubborn = TINY_SOLUTION + (
        "\nimport signal, time\n"
        "def preprocess(text):\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    while True:\n"
        "        time.sleep(0.05)\n"
    )
    submission = submission_create(learner=learner, lab=fault_lab, code=stubborn)
    wait_final(submission, [worker])
    fault_lab.wall_time_seconds = 120
    fault_lab.save()
    after = submission_create(
        learner=UserFactory(username="next"), lab=fault_lab, code=TINY_SOLUTION
    )
    wait_final(after, [worker])
    elapsed = (submission.finished_at - submission.started_at).total_seconds()
    fault_log.add(
        TrialRecord(
            fault="sandbox child ignores SIGTERM",
            trial=0,
            submissions=1,
            lost=0,
            duplicated=0,
            recovered_s=None,
            detail=f"{submission.status} after {elapsed:.1f}s: {submission.error_message[:60]}",
        )
    )
    assert submission.status == Submission.Status.ERROR
    assert "time limit" in submission.error_message
    # Ended at the wall limit plus the kill grace, not left hanging.
    assert elapsed < 6 + 5 + 15
    assert after.status == Submission.Status.GRADED and one_grade(after) == 1, after.error_message
