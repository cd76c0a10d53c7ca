"""SIGKILL a worker while it trains, between training and grading, and while it grades.

Two real workers share the machine; the one holding the run is killed outright (its
whole process group, sandbox included) at a varied moment, then restarted as a
supervisor would. The standby's sweep requeues the run once its heartbeat is stale, and
every submission must end graded with exactly one Grade.
"""

from __future__ import annotations

import time

import pytest

from grading.models import Grade
from labs.models import Submission
from labs.services.submissions import submission_create
from tests.conftest import wait_for
from tests.faults.conftest import (
    FAULT_SOLUTION,
    FAULT_TRIALS,
    TrialRecord,
    fresh,
    owner_of,
    restart_in_background,
    rng_for,
    wait_final,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for_moment(moment, submission, workers, rng, jobs_dir) -> None:
    """Block until the run is at the moment to kill, plus a random jitter."""

    def log() -> str:
        return "\n".join(w.log()[-2000:] for w in workers)

    if moment == "training":
        wait_for(lambda: fresh(submission).total_steps > 0, timeout=90, interval=0.05, message=log)
        target = rng.randint(1, max(1, submission.total_steps - 2))
        wait_for(lambda: fresh(submission).step >= target, timeout=90, interval=0.05, message=log)
        time.sleep(rng.uniform(0, 0.4))
    elif moment == "between":
        checkpoint = jobs_dir / str(submission.pk) / "checkpoint" / "model.safetensors"
        wait_for(checkpoint.exists, timeout=120, interval=0.01, message=log)
        time.sleep(rng.uniform(0, 0.15))
    else:
        wait_for(
            lambda: (
                fresh(submission).phase == Submission.Phase.GRADING
                or submission.status in Submission.FINAL
            ),
            timeout=120,
            interval=0.02,
            message=log,
        )
        time.sleep(rng.uniform(0, 0.3))


def _kill_trial(moment, trial, workers, lab, learner) -> tuple[TrialRecord, Submission]:
    fault = f"SIGKILL worker during {moment}"
    rng = rng_for(fault, trial)
    submission = submission_create(learner=learner, lab=lab, code=FAULT_SOLUTION)
    _wait_for_moment(moment, submission, workers, rng, workers[0].jobs_dir)
    victim = owner_of(fresh(submission), workers)
    recovered = None
    if victim is None or submission.status in Submission.FINAL:
        landed = "finished before the kill"
    else:
        victim.kill()
        killed_at = time.monotonic()
        at_kill = fresh(submission)
        landed = f"killed in {at_kill.phase} at step {at_kill.step}/{at_kill.total_steps}"
        assert at_kill.status == Submission.Status.RUNNING  # orphaned: nobody works on it
        restarting = restart_in_background(victim)  # as a supervisor would
        wait_for(
            lambda: fresh(submission).deliveries >= 2 or submission.status in Submission.FINAL,
            timeout=90,
            interval=0.1,
            message=lambda: "requeue\n" + "\n".join(w.log()[-2000:] for w in workers),
        )
        recovered = time.monotonic() - killed_at
        wait_final(submission, workers)
        restarting.join(timeout=90)
    wait_final(submission, workers)
    grades = Grade.objects.filter(submission=submission).count()
    record = TrialRecord(
        fault=fault,
        trial=trial,
        submissions=1,
        lost=int(grades == 0),
        duplicated=max(0, grades - 1),
        recovered_s=recovered,
        detail=f"{landed}; {submission.status}; deliveries {submission.deliveries}",
    )
    return record, submission


@pytest.mark.parametrize("moment", ["training", "between", "grading"])
def test_every_run_ends_with_exactly_one_grade_when_its_worker_is_killed(
    moment, worker, second_worker, fault_lab, learner, fault_log
):
    problems = []
    for trial in range(FAULT_TRIALS):
        record, submission = _kill_trial(moment, trial, [worker, second_worker], fault_lab, learner)
        fault_log.add(record)
        if submission.status != Submission.Status.GRADED or record.lost or record.duplicated:
            problems.append((record.detail, submission.error_message))
    assert problems == []
