"""The run path in one process: the real job folder, sandbox, engine and grader (tiny BERT)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.html import escape

import runs.pipeline
from labs.models import Submission
from runs.pipeline import submission_run
from tests.conftest import TINY_SOLUTION


@pytest.fixture
def settings_for_runs(settings, tmp_path):
    settings.ACADEMY_JOBS_DIR = tmp_path / "jobs"
    settings.ACADEMY_TRAINING_THREADS = 1
    return settings


def test_a_grading_bug_ends_the_run_failed_once_without_training_again(
    db, learner, lab, settings_for_runs, monkeypatch
):
    trainings = []
    real_train = runs.pipeline._train

    def counted_train(*args, **kwargs):
        trainings.append(1)
        return real_train(*args, **kwargs)

    def broken_grader(*args, **kwargs):
        raise RuntimeError("a bug in the grader")

    monkeypatch.setattr(runs.pipeline, "_train", counted_train)
    monkeypatch.setattr(runs.pipeline, "submission_grade", broken_grader)
    submission = Submission.objects.create(learner=learner, lab=lab, code=TINY_SOLUTION)

    status = submission_run(submission_id=submission.pk, worker="test")

    submission.refresh_from_db()
    assert status == Submission.Status.FAILED
    assert submission.status == Submission.Status.FAILED
    assert trainings == [1]
    assert submission.platform_retries == 0
    assert not submission.counts_as_attempt
    assert "could not grade your run" in submission.error_message
    # Nothing of the worker's traceback is shown to the learner as their program's output.
    assert "a bug in the grader" not in submission.log_tail


def test_a_trained_run_records_the_sandbox_and_its_memory_enforcement(
    db, learner, lab, settings_for_runs
):
    submission = Submission.objects.create(learner=learner, lab=lab, code=TINY_SOLUTION)

    assert submission_run(submission_id=submission.pk, worker="test") == Submission.Status.GRADED

    submission.refresh_from_db()
    assert submission.sandbox_mode == "strict"
    assert submission.run_info["memory_enforcement"] in {"cgroup", "rlimit_as"}


def test_the_engines_warnings_reach_the_run_panel(db, client, learner, lab, settings_for_runs):
    code = TINY_SOLUTION.replace('"epochs": 2', '"epochs": 7')  # the lab allows 3
    submission = Submission.objects.create(learner=learner, lab=lab, code=code)

    assert submission_run(submission_id=submission.pk, worker="test") == Submission.Status.GRADED

    submission.refresh_from_db()
    (warning,) = submission.run_info["warnings"]
    assert "epochs" in warning and "3" in warning
    client.force_login(learner)
    panel = client.get(
        reverse("labs:run-status", args=[submission.pk]), headers={"HX-Request": "true"}
    ).content.decode()
    assert "The engine changed or noticed something in your code" in panel
    assert escape(warning) in panel


def test_a_checkpoint_that_breaks_the_grader_is_rejected_by_kind_and_logged(
    db, learner, lab, settings_for_runs, monkeypatch, caplog
):
    """Found with a float8 tensor before the header check: whatever in a learner's
    checkpoint makes the grader raise is theirs (rejected, an attempt), never a platform
    fault; the learner hears the kind of error only, the operators the traceback."""
    import grading.services

    def breaks(*args, **kwargs):
        raise RuntimeError("cannot cast at /srv/academy/var/jobs/7")

    monkeypatch.setattr(grading.services, "predict", breaks)
    submission = Submission.objects.create(learner=learner, lab=lab, code=TINY_SOLUTION)

    assert submission_run(submission_id=submission.pk, worker="test") == "rejected"

    submission.refresh_from_db()
    assert submission.counts_as_attempt and submission.platform_retries == 0
    assert "The grader could not use your checkpoint (RuntimeError" in submission.error_message
    assert "/srv/academy" not in submission.error_message
    assert "cannot cast at /srv/academy" in caplog.text  # the traceback, for the operators


def test_a_top_level_loop_is_shown_as_the_learners_code_still_importing(
    transactional_db, client, learner, lab, settings_for_runs, monkeypatch
):
    """The real sandbox and engine: `loading_code` arrives, `code_imported` never does, so the
    panel names the learner's import as what is running, with the time against the limit."""
    import threading
    import time

    import web.selectors

    monkeypatch.setattr(web.selectors, "STILL_IMPORTING_SECONDS", 2)
    lab.wall_time_seconds = 15
    lab.save()
    submission = Submission.objects.create(learner=learner, lab=lab, code="while True:\n    pass\n")
    run = threading.Thread(
        target=submission_run, kwargs={"submission_id": submission.pk, "worker": "test"}
    )
    run.start()
    client.force_login(learner)
    url = reverse("labs:run-status", args=[submission.pk])
    panels = []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and run.is_alive():
        panels.append(client.get(url, headers={"HX-Request": "true"}).content.decode())
        if "still running at import time" in panels[-1]:
            break
        time.sleep(0.5)
    run.join(timeout=60)

    seen = "\n".join(panels)
    assert 'data-phase="importing">Your code is being imported' in seen
    assert "Your code is still running at import time." in seen, panels[-1]
    assert f"s of the {lab.wall_time_seconds} s limit" in seen
    assert 'data-phase="training"' not in seen and 'data-phase="hooks"' not in seen
    submission.refresh_from_db()
    assert not submission.is_active  # the limit ended it


# The engine's last words forged: a run of no time at all, on a device this worker lacks.
FORGES_ITS_SPEED = (
    TINY_SOLUTION
    + "\nimport labs.training.engine as engine\n"
    + "_done = engine._done_event\n"
    + "engine._done_event = lambda *a: {**_done(*a), 'wall_s': 0.001, 'device': 'cuda'}\n"
)


def test_the_wall_time_and_device_shown_are_the_hosts(db, client, learner, lab, settings_for_runs):
    lab.queue = lab.Queue.GPU  # a GPU lab, on a worker without a GPU
    lab.save()
    submission = Submission.objects.create(learner=learner, lab=lab, code=FORGES_ITS_SPEED)

    assert submission_run(submission_id=submission.pk, worker="test") == Submission.Status.GRADED

    submission.refresh_from_db()
    assert submission.result["wall_s"] == submission.run_info["host_wall_s"] >= 1
    assert submission.run_info["host_device"] == "cpu"
    client.force_login(learner)
    panel = client.get(
        reverse("labs:run-status", args=[submission.pk]), headers={"HX-Request": "true"}
    ).content.decode()
    assert "s on the CPU" in panel
