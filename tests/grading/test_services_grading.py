from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from grading.models import AuditEvent, Grade, ModuleProgress
from grading.services import RegradeImpossible, grade_apply, grade_values, submission_regrade
from labs.models import Submission
from tests.conftest import tiny_model  # noqa: F401  (fixture)
from tests.grading.test_evaluation import job  # noqa: F401  (fixture)

METRICS = {
    "accuracy": 0.8,
    "macro_f1": 0.7,
    "per_class": [{"label": "good", "f1": 0.9}],
    "confusion_matrix": [],
}


def make_grade(submission, lab, metrics=METRICS, **fields):
    return Grade.objects.create(
        submission=submission,
        heldout_size=30,
        eval_seconds=1.0,
        eval_samples_per_second=30.0,
        device="CPU",
        **grade_values(lab, metrics),
        **fields,
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


# --------------------------------------------------------------------------
# Floors: what a pass needs beside the score

# The first lab's reference as the issue measured it: accuracy 0.736, 2 of 347 negatives found.
SKEWED = {
    "accuracy": 0.736,
    "macro_f1": 0.47,
    "labels": ["negative", "neutral", "positive"],
    "per_class": [
        {"label": "negative", "precision": 1.0, "recall": 0.006, "f1": 0.011, "support": 347},
        {"label": "neutral", "precision": 0.74, "recall": 0.97, "f1": 0.84, "support": 1566},
        {"label": "positive", "precision": 0.7, "recall": 0.45, "f1": 0.55, "support": 475},
    ],
    "confusion_matrix": [],
}


def first_lab_rubric(lab, **floors):
    lab.baseline, lab.target, lab.pass_mark, lab.pass_floors = 0.66, 0.82, 40, floors
    lab.full_clean()
    lab.save()


def test_a_score_over_the_pass_mark_does_not_pass_under_a_class_recall_floor(learner, lab):
    first_lab_rubric(lab, class_recall=0.3)
    submission = Submission.objects.create(learner=learner, lab=lab, code="x", status="graded")

    grade = make_grade(submission, lab, SKEWED)
    grade_apply(grade=grade)

    grade.refresh_from_db()
    assert grade.score == pytest.approx(47.5)
    assert not grade.passed
    assert grade.floors == [
        {
            "floor": "class_recall",
            "required": 0.3,
            "actual": 0.006,
            "met": False,
            "label": "negative",
        }
    ]
    progress = ModuleProgress.objects.get(learner=learner, module=lab.module)
    assert progress.status == ModuleProgress.Status.IN_PROGRESS


def test_a_pass_needs_every_floor_and_each_reports_what_decided_it(lab):
    first_lab_rubric(lab, class_f1=0.5, macro_f1=0.4)
    values = grade_values(lab, SKEWED)
    assert not values["passed"]
    assert [(f["floor"], f["actual"], f["met"], f["label"]) for f in values["floors"]] == [
        ("macro_f1", 0.47, True, None),  # in Lab.Floor's order, not the rubric's
        ("class_f1", 0.011, False, "negative"),
    ]
    first_lab_rubric(lab, class_f1=0.01, macro_f1=0.4)
    assert grade_values(lab, SKEWED)["passed"]
    first_lab_rubric(lab)
    assert grade_values(lab, SKEWED)["passed"] and grade_values(lab, SKEWED)["floors"] == []


def test_a_class_absent_from_the_heldout_split_decides_no_floor(lab):
    first_lab_rubric(lab, class_recall=0.4)
    absent = {"label": "other", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    recalls = (0.6, 0.97, 0.45)
    found = [{**row, "recall": r} for row, r in zip(SKEWED["per_class"], recalls, strict=True)]
    values = grade_values(lab, {**SKEWED, "per_class": [*found, absent]})
    assert values["floors"][0]["label"] == "positive"
    assert values["passed"]


def test_a_regrade_applies_the_labs_current_floors(learner, lab, job):  # noqa: F811
    # Any accuracy scores at least the pass mark; no run of the untrained tiny model finds
    # every held-out example of every class.
    lab.baseline, lab.target, lab.pass_mark = 0.0, 1.0, 0
    lab.save()
    submission = Submission.objects.create(learner=learner, lab=lab, code="x", status="graded")
    assert make_grade(submission, lab).passed
    lab.pass_floors = {"class_recall": 1.0}
    lab.save()

    grade = submission_regrade(submission=submission, job_dir=job)

    grade.refresh_from_db()
    assert not grade.passed
    [floor] = grade.floors
    assert floor["floor"] == "class_recall" and floor["required"] == 1.0 and not floor["met"]
    assert floor["label"] in lab.dataset.labels
    assert grade.weight_check["total_params"] > 0  # the saved weights were checked again
    audit = AuditEvent.objects.get(submission=submission)
    assert audit.detail["from_passed"] and not audit.detail["to_passed"]


def test_a_regrade_under_rules_that_now_refuse_the_checkpoint_keeps_the_grade(
    learner,
    lab,
    job,  # noqa: F811
):
    submission = Submission.objects.create(learner=learner, lab=lab, code="x", status="graded")
    before = make_grade(submission, lab)
    lab.checkpoint_rules = {"may_change": ["bert.pooler.*"]}  # the head may not change now
    lab.save()

    with pytest.raises(
        RegradeImpossible,
        match=r"now refuses its checkpoint\. classifier\.weight is not in the base model",
    ):
        submission_regrade(submission=submission, job_dir=job)

    after = Grade.objects.get(submission=submission)
    assert (after.score, after.passed, after.regraded_at) == (before.score, before.passed, None)
