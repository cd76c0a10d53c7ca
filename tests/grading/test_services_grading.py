from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from grading.models import Grade, ModuleProgress
from grading.services import RegradeImpossible, grade_apply, grade_values, submission_regrade
from labs.models import Submission

METRICS = {
    "accuracy": 0.8,
    "macro_f1": 0.7,
    "per_class": [{"label": "good", "f1": 0.9}],
    "confusion_matrix": [],
}


def make_grade(submission, lab, metrics=METRICS):
    return Grade.objects.create(
        submission=submission,
        heldout_size=30,
        eval_seconds=1.0,
        eval_samples_per_second=30.0,
        device="CPU",
        **grade_values(lab, metrics),
    )


def test_a_rubric_with_target_not_above_baseline_is_refused_at_save(lab):
    lab.target = lab.baseline
    with pytest.raises(ValidationError, match="target must be above the baseline"):
        lab.full_clean()
    with pytest.raises(IntegrityError):
        lab.save()


def test_grade_values_follow_the_labs_metric(lab):
    lab.baseline, lab.target, lab.pass_mark = 0.5, 0.9, 60
    values = grade_values(lab, METRICS)
    assert values["score"] == pytest.approx(75.0)
    assert values["passed"]
    lab.metric, lab.metric_label = "class_f1", "good"
    assert grade_values(lab, METRICS)["metric"] == "f1:good"
    assert grade_values(lab, METRICS)["metric_value"] == 0.9


def test_one_grade_per_submission_is_a_database_rule(learner, lab):
    submission = Submission.objects.create(learner=learner, lab=lab, code="x", status="graded")
    make_grade(submission, lab)
    with pytest.raises(IntegrityError):
        make_grade(submission, lab)


def test_progress_keeps_the_best_score_and_the_attempt_that_earned_it(learner, lab):
    lab.baseline, lab.target, lab.pass_mark = 0.5, 0.9, 90
    first = Submission.objects.create(learner=learner, lab=lab, code="x", status="graded")
    grade_apply(grade=make_grade(first, lab))  # 75: not a pass
    second = Submission.objects.create(learner=learner, lab=lab, code="x", status="graded")
    grade_apply(grade=make_grade(second, lab, {**METRICS, "accuracy": 0.6}))  # 25: worse
    progress = ModuleProgress.objects.get(learner=learner, module=lab.module)
    assert progress.best_score == pytest.approx(75.0)
    assert progress.best_submission_id == first.pk
    assert progress.status == ModuleProgress.Status.IN_PROGRESS


def test_validation_runs_record_the_labs_reference_score_not_progress(instructor, lab):
    run = Submission.objects.create(
        learner=instructor, lab=lab, code="x", status="graded", validation_of="reference"
    )
    grade_apply(grade=make_grade(run, lab))
    lab.refresh_from_db()
    assert lab.reference_score is not None
    assert lab.validated_at is not None
    assert not ModuleProgress.objects.filter(learner=instructor).exists()


def test_regrading_a_run_whose_files_were_cleaned_up_says_so(learner, lab, settings, tmp_path):
    settings.ACADEMY_JOBS_DIR = tmp_path
    submission = Submission.objects.create(learner=learner, lab=lab, code="x", status="graded")
    make_grade(submission, lab)
    with pytest.raises(RegradeImpossible, match="were cleaned up"):
        submission_regrade(submission=submission, job_dir=tmp_path / str(submission.pk))


def test_regrading_an_ungraded_run_is_refused(learner, lab, tmp_path):
    submission = Submission.objects.create(learner=learner, lab=lab, code="x", status="error")
    with pytest.raises(RegradeImpossible, match="not graded"):
        submission_regrade(submission=submission, job_dir=tmp_path / str(submission.pk))
