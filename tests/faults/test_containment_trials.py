"""The hostile learner's attacks, repeated through the real pipeline for bench/README.md's
containment table: the job folder, the sandbox, the engine and the grader (tiny BERT).

Each attack has its own test, which CI runs once (tests/runs/test_verdicts.py,
tests/runs/test_containment.py, tests/sandbox/test_quotas.py); the attacks' code is
imported from there, written once. This file repeats them ACADEMY_FAULT_TRIALS times and
records what each got, so it runs only when bench/faults.py asks for a report.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from labs.models import Submission
from runs.pipeline import submission_run
from tests.conftest import TINY_SOLUTION
from tests.faults.conftest import FAULT_TRIALS, ContainmentRecord, FaultLog
from tests.runs.test_containment import (
    FILLS_THE_JOB_FOLDER,
    STARTS_THREADS_WITHOUT_END,
    another_run_fork_bombing,
    caps,  # noqa: F401 (a fixture)
    worker_disk,  # noqa: F401 (a fixture)
)
from tests.runs.test_verdicts import (
    _FIND_THE_CHANNEL,
    _IS_PIPE,
    EXIT_ON_IMPORT,
    FORGES_A_PLATFORM_ERROR,
    KILLS_ITSELF,
    NAN_LOSS,
    SAVES_A_FLOAT8_TENSOR,
    SUPPRESSES_THE_START,
    WRITES_GARBAGE,
)

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(
        "ACADEMY_FAULT_REPORT" not in os.environ,
        reason="repeats attacks that have their own tests; run by bench/faults.py",
    ),
]

MB = 1024 * 1024

# Well-formed events with values no engine sends: dropped, and the run goes on to its grade.
FORGES_BAD_VALUES = (
    TINY_SOLUTION
    + "\nimport os, stat\n"
    + _IS_PIPE
    + _FIND_THE_CHANNEL
    + "for fd in CHANNELS:\n"
    + '    os.write(fd, b\'{"event": "step", "step": -5, "loss": NaN}\\n\')\n'
    + '    os.write(fd, b\'{"event": "epoch", "epoch": 1e309, "dev_accuracy": 0.999}\\n\')\n'
)


@dataclass(frozen=True)
class Attack:
    name: str
    code: str
    expected: str
    says: str = ""  # a phrase the learner's message must hold
    setup: Callable[[object], None] | None = None


ATTACKS = [
    Attack("os._exit(1) on import", EXIT_ON_IMPORT, "error, attempt used", "exited with status 1"),
    Attack("SIGKILL to itself", KILLS_ITSELF, "error, attempt used", "SIGKILL"),
    Attack("garbage on the event channel", WRITES_GARBAGE, "error, attempt used", "event channel"),
    Attack("a forged platform_error event", FORGES_A_PLATFORM_ERROR, "error, attempt used"),
    Attack("start event suppressed", SUPPRESSES_THE_START, "graded, attempt used"),
    Attack("events with NaN loss, step -5, epoch 1e309", FORGES_BAD_VALUES, "graded, attempt used"),
    Attack("NaN loss from training_step", NAN_LOSS, "error, attempt used", "loss was nan"),
    Attack(
        "float8 tensor in the checkpoint",
        SAVES_A_FLOAT8_TENSOR,
        "rejected, attempt used",
        "classifier.weight",
    ),
    Attack(
        "1,000 threads (its process limit)",
        STARTS_THREADS_WITHOUT_END,
        "error, attempt used",
        "more than its 64 processes",
    ),
]


def _verdict(submission: Submission) -> str:
    used = "attempt used" if submission.counts_as_attempt else "no attempt"
    retried = f", retried {submission.platform_retries}x" if submission.platform_retries else ""
    return f"{submission.status}, {used}{retried}"


def _trial(learner, lab, code: str) -> tuple[Submission, float]:
    submission = Submission.objects.create(learner=learner, lab=lab, code=code)
    started = time.monotonic()
    submission_run(submission_id=submission.pk, worker="trial")
    submission.refresh_from_db()
    return submission, time.monotonic() - started


@pytest.fixture
def for_runs(settings, tmp_path, lab):
    settings.ACADEMY_JOBS_DIR = tmp_path / "jobs"
    settings.ACADEMY_TRAINING_THREADS = 1
    lab.attempts_per_day = 1000
    lab.save()
    return lab


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
@pytest.mark.parametrize("trial", range(FAULT_TRIALS))
def test_attack(db, learner, for_runs, fault_log: FaultLog, attack: Attack, trial: int) -> None:
    submission, seconds = _trial(learner, for_runs, attack.code)
    seen = _verdict(submission)
    held = seen == attack.expected and attack.says in submission.error_message
    fault_log.add(
        ContainmentRecord(
            attack=attack.name,
            trial=trial,
            expected=attack.expected,
            seen=seen,
            held=held,
            seconds=seconds,
            detail=submission.error_message[:160].replace("\n", " "),
        )
    )
    assert held, (seen, submission.error_message)


@pytest.mark.parametrize("trial", range(FAULT_TRIALS))
def test_fill_the_job_folder(
    db,
    learner,
    for_runs,
    settings,
    worker_disk,  # noqa: F811
    fault_log: FaultLog,
    trial: int,
) -> None:
    settings.ACADEMY_JOB_DISK_MB = 32
    free_before = shutil.disk_usage(worker_disk).free
    submission, seconds = _trial(learner, for_runs, FILLS_THE_JOB_FOLDER)
    fell = (free_before - shutil.disk_usage(worker_disk).free) / MB
    seen = _verdict(submission)
    held = seen == "error, attempt used" and fell <= 33
    fault_log.add(
        ContainmentRecord(
            attack="fill the job folder (32 MB quota)",
            trial=trial,
            expected="error, attempt used",
            seen=seen,
            held=held,
            seconds=seconds,
            detail=f"worker's disk fell {fell:.1f} MB; {submission.error_message[:100]}",
        )
    )
    assert held, (seen, fell, submission.error_message)


@pytest.mark.parametrize("trial", range(FAULT_TRIALS))
def test_a_neighbour_fork_bombs(
    db,
    learner,
    for_runs,
    tmp_path,
    caps,  # noqa: F811
    fault_log: FaultLog,
    trial: int,
) -> None:
    with another_run_fork_bombing(caps, tmp_path):
        submission, seconds = _trial(learner, for_runs, TINY_SOLUTION)
    seen = _verdict(submission)
    held = seen == "graded, attempt used"
    fault_log.add(
        ContainmentRecord(
            attack="an ordinary run beside a fork bomb",
            trial=trial,
            expected="graded, attempt used",
            seen=seen,
            held=held,
            seconds=seconds,
            detail=submission.error_message[:160],
        )
    )
    assert held, (seen, submission.error_message)
