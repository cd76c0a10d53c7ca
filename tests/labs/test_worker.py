"""End to end through a real Celery worker process, the real sandbox and real training."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from labs.models import Submission
from labs.services.submissions import submission_create
from labs.training.precision import resolve_precision
from runs.jobs import job_write
from tests.conftest import TINY_SOLUTION, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def fresh(submission: Submission) -> Submission:
    submission.refresh_from_db()
    return submission


def test_submission_runs_end_to_end_with_progress_and_a_checkpoint(worker, learner, lab):
    submission = submission_create(learner=learner, lab=lab, code=TINY_SOLUTION)
    assert fresh(submission).status == Submission.Status.QUEUED

    wait_for(
        lambda: fresh(submission).status == Submission.Status.RUNNING, timeout=60, message="running"
    )
    wait_for(
        lambda: fresh(submission).status in Submission.FINAL,
        timeout=180,
        message=lambda: f"final state\n{worker.log()}",
    )

    assert submission.status == Submission.Status.GRADED, (
        submission.error_message,
        submission.log_tail,
    )
    assert submission.deliveries == 1
    assert submission.counts_as_attempt
    assert submission.total_steps > 0
    assert submission.step == submission.total_steps
    assert len(submission.loss_curve) >= 2
    assert [row["epoch"] for row in submission.dev_curve] == [1, 2]
    assert submission.device.startswith("CPU") or submission.run_info["device"] == "cpu"
    assert submission.sandbox_mode == "strict"
    # The worker's own choice (ACADEMY_TRAINING_PRECISION, fp32 in the suite), not the run's word.
    assert submission.training_precision == resolve_precision(
        settings.ACADEMY_TRAINING_PRECISION, "cpu"
    )
    job_dir = worker.jobs_dir / str(submission.pk)
    # Once graded, the worker keeps only the checkpoint (for re-grading).
    wait_for(
        lambda: {p.name for p in job_dir.iterdir()} == {"checkpoint"},
        timeout=30,
        message=lambda: f"a job folder trimmed to its checkpoint: {list(job_dir.iterdir())}",
    )
    checkpoint = job_dir / "checkpoint"
    assert (checkpoint / "model.safetensors").is_file()
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert len(config["id2label"]) == len(lab.dataset.labels)
    # The job folder never holds the held-out split: write it again as the worker did.
    job_files = {p.name for p in job_write(submission).iterdir()}
    assert job_files == {"solution.py", "train.csv", "dev.csv", "spec.json"}
    heldout_text = lab.dataset.examples.filter(split="heldout").first().text
    for name in ("train.csv", "dev.csv"):
        assert heldout_text not in (job_dir / name).read_text()
    # The error analysis the run reported quotes dev texts only, never a held-out one.
    analysis = submission.run_info["dev_analysis"]
    dev_csv = (job_dir / "dev.csv").read_text()
    heldout = set(lab.dataset.examples.filter(split="heldout").values_list("text", flat=True))
    quoted = [m["text"] for m in analysis["mistakes"]] + [
        c["example"] for c in analysis["confusions"]
    ]
    assert quoted and all(text in dev_csv and text not in heldout for text in quoted)


def test_learner_exception_is_an_error_with_their_traceback_only(worker, learner, lab):
    code = TINY_SOLUTION + "\n\ndef preprocess(text):\n    return text.upper() + undefined_name\n"
    submission = submission_create(learner=learner, lab=lab, code=code)
    wait_for(lambda: fresh(submission).status in Submission.FINAL, timeout=120, message="final")
    assert submission.status == Submission.Status.ERROR
    assert "preprocess" in submission.error_message
    assert "NameError" in submission.learner_traceback
    assert 'File "solution.py", line' in submission.learner_traceback
    assert "/work/" not in submission.learner_traceback + submission.log_tail
    assert "site-packages" not in submission.learner_traceback
    assert submission.counts_as_attempt


def test_infinite_loop_is_stopped_at_the_wall_limit(worker, learner, lab):
    lab.wall_time_seconds = 8
    lab.save()
    code = TINY_SOLUTION + "\n\ndef preprocess(text):\n    while True:\n        pass\n"
    submission = submission_create(learner=learner, lab=lab, code=code)
    wait_for(lambda: fresh(submission).status in Submission.FINAL, timeout=90, message="final")
    assert submission.status == Submission.Status.ERROR
    assert "time limit" in submission.error_message


def test_cancel_stops_a_running_run(worker, learner, lab):
    from labs.services.submissions import submission_cancel

    code = (
        TINY_SOLUTION.replace('"epochs": 2', '"epochs": 3')
        + "\nimport time\n_p = preprocess\ndef preprocess(t):\n    time.sleep(0.05)\n    return _p(t)\n"
    )
    submission = submission_create(learner=learner, lab=lab, code=code)
    wait_for(
        lambda: fresh(submission).status == Submission.Status.RUNNING, timeout=60, message="running"
    )
    submission_cancel(submission=submission)
    wait_for(lambda: fresh(submission).status in Submission.FINAL, timeout=60, message="cancelled")
    assert submission.status == Submission.Status.CANCELLED


# A worker killed mid-run (and during grading, and in between): tests/faults/test_worker_kills.py


def test_same_job_delivered_twice_runs_once(worker, learner, lab):
    from runs.tasks import run_submission

    submission = submission_create(learner=learner, lab=lab, code=TINY_SOLUTION)
    run_submission.apply_async(args=[submission.pk], queue="cpu")  # a duplicate delivery
    wait_for(lambda: fresh(submission).status in Submission.FINAL, timeout=180, message="final")
    wait_for(
        lambda: "not claimable" in worker.log(), timeout=30, message="duplicate seen and dropped"
    )
    assert submission.status == Submission.Status.GRADED
    assert submission.deliveries == 1


def test_a_passing_run_is_graded_updates_progress_and_opens_the_next_stage(
    worker, learner, lab, course
):
    from courses.models import Module
    from grading.models import Grade, ModuleProgress
    from grading.selectors import course_progress
    from grading.services import module_mark_complete

    for slug in ("intro", "loss"):
        module_mark_complete(learner=learner, module=Module.objects.get(course=course, slug=slug))
    assert (
        not course_progress(learner=learner, course=course).stages[1].is_open
    )  # the lab is still missing
    lab.baseline, lab.target, lab.pass_mark = 0.0, 0.5, 50  # reachable by a tiny random BERT
    lab.save()

    submission = submission_create(
        learner=learner, lab=lab, code=TINY_SOLUTION.replace('"epochs": 2', '"epochs": 3')
    )
    wait_for(
        lambda: fresh(submission).status in Submission.FINAL,
        timeout=180,
        message=lambda: f"final\n{worker.log()}",
    )
    assert submission.status == Submission.Status.GRADED, submission.error_message

    grade = Grade.objects.get(submission=submission)
    assert grade.heldout_size == 30
    assert grade.metric == "accuracy"
    assert grade.metric_value == pytest.approx(grade.metrics["accuracy"])
    assert len(grade.metrics["confusion_matrix"]) == 3
    assert grade.passed, grade.metrics
    progress = ModuleProgress.objects.get(learner=learner, module=lab.module)
    assert progress.status == ModuleProgress.Status.COMPLETED
    assert progress.best_score == grade.score
    assert progress.best_submission_id == submission.pk
    assert course_progress(learner=learner, course=course).stages[1].is_open

    # The same job delivered again: nothing to claim, still one grade.
    from runs.tasks import run_submission

    run_submission.apply_async(args=[submission.pk], queue="cpu")
    wait_for(
        lambda: worker.log().count("not claimable") >= 1, timeout=30, message="duplicate dropped"
    )
    assert Grade.objects.filter(submission=submission).count() == 1


def test_held_out_texts_a_preprocess_prints_or_raises_reach_no_row_log_or_file(
    worker, learner, lab
):
    heldout = list(lab.dataset.examples.filter(split="heldout").values_list("text", flat=True))
    code = TINY_SOLUTION.replace('"epochs": 2', '"epochs": 1') + (
        "\nimport sys\n"
        "def preprocess(text):\n"
        "    print('preprocessing', text, file=sys.stderr)\n"
        "    if ' held ' in text:  # only the held-out texts say 'held'\n"
        "        raise ValueError(text)\n"
        "    return text.lower()\n"
    )
    submission = submission_create(learner=learner, lab=lab, code=code)
    wait_for(
        lambda: fresh(submission).status in Submission.FINAL,
        timeout=180,
        message=lambda: f"final\n{worker.log()}",
    )

    assert submission.status == Submission.Status.ERROR, submission.error_message
    assert submission.counts_as_attempt
    assert "would reveal the held-out set" in submission.error_message
    assert "preprocessing" in submission.log_tail  # training's own prints are still shown
    job_dir = worker.jobs_dir / str(submission.pk)
    readable = "\n".join(
        [
            repr(list(Submission.objects.filter(pk=submission.pk).values())),
            worker.log_path.read_text(errors="replace"),  # the worker's whole log, INFO and up
            *(path.read_text(errors="replace") for path in job_dir.rglob("*") if path.is_file()),
        ]
    )
    assert [text for text in heldout if text in readable] == []
