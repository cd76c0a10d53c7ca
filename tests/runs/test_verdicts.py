"""Who is at fault, as a hostile learner would test it: the real sandbox, engine and tiny BERT.

Learner code shares the engine's process. Whatever it does to end the run early (an exit,
a signal to itself, a line forged onto the engine's event channel) is its own error: it
uses an attempt and is never retried. Only what the host can attribute to itself is
`failed`.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from django.urls import reverse

import runs.pipeline
from labs.models import Submission
from labs.training.base_models import resolve_base_model
from runs.pipeline import submission_run
from tests.conftest import TINY_SOLUTION

# The learner's side of each attack. Every file keeps the lab's required `preprocess`.
EXIT_ON_IMPORT = TINY_SOLUTION + "\nimport os\nos._exit(1)\n"

EXIT_IN_A_HOOK = """
import os
HYPERPARAMETERS = {"epochs": 1, "max_length": 32}

def preprocess(text):
    os._exit(1)
"""

KILLS_ITSELF = """
import os, signal
HYPERPARAMETERS = {"epochs": 1, "max_length": 32}

def preprocess(text):
    os.kill(os.getpid(), signal.SIGKILL)
"""

# The event channel is the one pipe that is not stderr (fd 1 was pointed at stderr).
_FIND_THE_CHANNEL = """
import os, stat
_log = os.fstat(2)
CHANNELS = [
    fd for fd in range(3, 64)
    if _is_pipe(fd) and os.fstat(fd).st_ino != _log.st_ino
]
"""
_IS_PIPE = """
def _is_pipe(fd):
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False
"""

WRITES_GARBAGE = (
    TINY_SOLUTION
    + "\nimport os, stat\n"
    + _IS_PIPE
    + _FIND_THE_CHANNEL
    + "for fd in CHANNELS:\n    os.write(fd, b'this is not an event\\n')\n"
)

# A well-formed event the engine did not send: a "platform error", then an exit.
FORGES_A_PLATFORM_ERROR = (
    TINY_SOLUTION
    + "\nimport os, stat, json\n"
    + _IS_PIPE
    + _FIND_THE_CHANNEL
    + "for fd in CHANNELS:\n"
    + "    os.write(fd, json.dumps({'event': 'platform_error', 'message': 'OSError: disk'})"
    + ".encode() + b'\\n')\n"
    + "os._exit(1)\n"
)


@pytest.fixture
def counted_trainings(settings, tmp_path, monkeypatch) -> list[int]:
    settings.ACADEMY_JOBS_DIR = tmp_path / "jobs"
    settings.ACADEMY_TRAINING_THREADS = 1
    trainings: list[int] = []
    real_train = runs.pipeline._train

    def counted(*args, **kwargs):
        trainings.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(runs.pipeline, "_train", counted)
    return trainings


def _run(learner, lab, code: str) -> Submission:
    submission = Submission.objects.create(learner=learner, lab=lab, code=code)
    submission_run(submission_id=submission.pk, worker="test")
    submission.refresh_from_db()
    return submission


def _assert_the_learners_error(submission: Submission, trainings: list[int]) -> None:
    assert submission.status == Submission.Status.ERROR, submission.error_message
    assert submission.counts_as_attempt
    assert submission.platform_retries == 0
    assert trainings == [1]  # ended once: no free retry
    assert "not your fault" not in submission.error_message


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (EXIT_ON_IMPORT, "exited with status 1"),
        (EXIT_IN_A_HOOK, "exited with status 1"),
        (KILLS_ITSELF, "killed by signal SIGKILL"),
    ],
    ids=["os._exit on import", "os._exit in a hook", "SIGKILL to itself"],
)
def test_an_exit_caused_by_learner_code_is_its_error_and_uses_an_attempt(
    db, learner, lab, counted_trainings, code, said
):
    submission = _run(learner, lab, code)

    _assert_the_learners_error(submission, counted_trainings)
    assert said in submission.error_message
    assert "Your code runs inside the training process" in submission.error_message


def test_a_line_forged_onto_the_event_channel_stops_the_run_as_the_learners_error(
    db, learner, lab, counted_trainings
):
    submission = _run(learner, lab, WRITES_GARBAGE)

    _assert_the_learners_error(submission, counted_trainings)
    assert "event channel" in submission.error_message
    assert "this is not an event" in submission.error_message
    assert not hasattr(submission, "grade")


def test_a_forged_platform_error_is_not_taken_as_the_platforms(db, learner, lab, counted_trainings):
    submission = _run(learner, lab, FORGES_A_PLATFORM_ERROR)

    _assert_the_learners_error(submission, counted_trainings)
    assert "counts as an attempt" in submission.error_message


def test_a_failure_before_the_learners_code_loads_is_still_the_platforms(
    db, learner, lab, counted_trainings, monkeypatch
):
    # The job folder's spec is not JSON: the engine fails before
    # it imports a line of the learner's, so the fault is ours, retried, never an attempt.
    real_job_write = runs.pipeline.job_write

    def broken_spec(submission, **kwargs):
        job_dir = real_job_write(submission, **kwargs)
        (job_dir / "spec.json").write_text("{not json")
        return job_dir

    monkeypatch.setattr(runs.pipeline, "job_write", broken_spec)
    submission = Submission.objects.create(learner=learner, lab=lab, code=EXIT_ON_IMPORT)

    assert submission_run(submission_id=submission.pk, worker="test") == Submission.Status.QUEUED

    submission.refresh_from_db()
    assert submission.platform_retries == 1
    assert not submission.counts_as_attempt


# The platform's own program failing before any learner code runs, with what such a crash
# might print: a traceback out of the engine, where its interpreter and source are, and the
# sandbox's mount table (which names each bind's source on the host).
CRASHES_BEFORE_THE_LEARNERS_CODE = """
import os, sys
import labs.training.engine
print("interpreter", sys.executable, sys.prefix, file=sys.stderr)
print("engine", labs.training.engine.__file__, os.getcwd(), file=sys.stderr)
print(open("/proc/self/mountinfo").read(), file=sys.stderr)
raise RuntimeError("the engine could not start")
"""


def test_a_platform_faults_log_tail_shown_to_the_learner_names_no_host_path(
    db, client, learner, lab, counted_trainings, monkeypatch, settings, tmp_path
):
    monkeypatch.setattr(
        runs.pipeline,
        "engine_argv",
        lambda *args: [sys.executable, "-c", CRASHES_BEFORE_THE_LEARNERS_CODE],
    )
    submission = Submission.objects.create(
        learner=learner,
        lab=lab,
        code=TINY_SOLUTION,
        platform_retries=runs.pipeline.MAX_PLATFORM_RETRIES,  # the last retry: it ends here
    )

    assert submission_run(submission_id=submission.pk, worker="test") == Submission.Status.FAILED

    submission.refresh_from_db()
    assert not submission.counts_as_attempt
    client.force_login(learner)
    page = client.get(reverse("labs:submission", args=[submission.pk])).content.decode()
    # The crash's output is shown (the test would pass vacuously on an empty log)...
    assert "RuntimeError: the engine could not start" in submission.log_tail
    assert "the engine could not start" in page
    # ...and none of the worker's own paths are in it.
    host_paths = {
        str(settings.BASE_DIR),
        sys.prefix,
        os.path.realpath(sys.prefix),
        str(Path(settings.ACADEMY_JOBS_DIR).resolve()),
        str(tmp_path),
        resolve_base_model(lab.base_model),  # its bind's source is in the mount table
    }
    for host_path in host_paths:
        assert host_path not in submission.log_tail, host_path
        assert host_path not in submission.error_message, host_path
        assert host_path not in page, host_path


# The engine's start event never arrives; the run trains, saves and is graded.
SUPPRESSES_THE_START = (
    TINY_SOLUTION
    + "\nimport labs.training.engine as engine\n"
    + "engine._start_event = lambda *a, **k: {'event': 'warning', 'message': 'no start'}\n"
)


def test_a_graded_run_uses_an_attempt_even_when_its_start_event_is_suppressed(
    db, learner, lab, counted_trainings
):
    submission = _run(learner, lab, SUPPRESSES_THE_START)

    assert submission.status == Submission.Status.GRADED, submission.error_message
    assert submission.counts_as_attempt


NAN_LOSS = """
HYPERPARAMETERS = {"epochs": 1, "max_length": 32}

def preprocess(text):
    return text

def training_step(model, batch, hp):
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return (logits * 0).sum() / 0  # 0/0: NaN
"""


def test_a_nan_loss_from_training_step_is_the_learners_error_naming_the_step(
    db, learner, lab, counted_trainings
):
    submission = _run(learner, lab, NAN_LOSS)

    _assert_the_learners_error(submission, counted_trainings)
    assert "The training loss was nan" in submission.error_message
    # Named to the progress window it was seen in (one host sync per window, not per step).
    assert re.search(r"at steps? 1( to \d+)? of \d+\.", submission.error_message)
    assert "training_step()" in submission.error_message


# After the engine has saved the model, rewrite one tensor as float8 (found crashing the
# grader as a platform fault): the grader must refuse it by name.
SAVES_A_FLOAT8_TENSOR = (
    TINY_SOLUTION
    + """
import atexit

def _narrow_the_checkpoint():
    import pathlib
    import safetensors.torch as st
    import torch
    for path in pathlib.Path("/job").rglob("model.safetensors"):
        tensors = st.load_file(str(path))
        tensors["classifier.weight"] = tensors["classifier.weight"].to(torch.float8_e4m3fn)
        st.save_file(tensors, str(path), metadata={"format": "pt"})

atexit.register(_narrow_the_checkpoint)
"""
)


def test_a_float8_tensor_in_the_saved_checkpoint_is_rejected_by_name_using_an_attempt(
    db, learner, lab, counted_trainings
):
    submission = _run(learner, lab, SAVES_A_FLOAT8_TENSOR)

    assert submission.status == Submission.Status.REJECTED, submission.error_message
    assert submission.counts_as_attempt and submission.platform_retries == 0
    assert counted_trainings == [1]
    assert "classifier.weight" in submission.error_message
    assert "F8_E4M3" in submission.error_message
    assert not hasattr(submission, "grade")
