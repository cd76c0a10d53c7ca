"""The audit trail of a re-grade: who asked, the score before and after (a real checkpoint)."""

from __future__ import annotations

import shutil
from pathlib import Path

from grading.models import AuditEvent, Grade
from grading.services import grade_apply, grade_values
from labs.models import Submission
from runs.jobs import job_dir_for


def write_checkpoint(tiny_model: str, job_dir: Path, labels: list[str]) -> None:
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(
        tiny_model,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    checkpoint = job_dir / "checkpoint"
    model.save_pretrained(checkpoint, safe_serialization=True)
    for item in Path(tiny_model).iterdir():
        if item.name not in {"config.json", "model.safetensors"}:
            shutil.copyfile(item, checkpoint / item.name)


def test_a_regrade_records_who_asked_and_the_score_before_and_after(
    lab, learner, instructor, settings, tmp_path
):
    from runs.tasks import regrade_submission

    settings.ACADEMY_JOBS_DIR = tmp_path
    submission = Submission.objects.create(learner=learner, lab=lab, code="x", status="graded")
    metrics = {"accuracy": 0.99, "macro_f1": 0.99, "per_class": [], "confusion_matrix": []}
    grade = Grade.objects.create(
        submission=submission,
        heldout_size=30,
        eval_seconds=1.0,
        eval_samples_per_second=30.0,
        device="CPU",
        **grade_values(lab, metrics),
    )
    grade_apply(grade=grade)
    write_checkpoint(lab.base_model, job_dir_for(submission), list(lab.dataset.labels))

    regrade_submission.apply(args=[submission.pk, instructor.pk])

    event = AuditEvent.objects.get(action=AuditEvent.Action.REGRADED)
    grade.refresh_from_db()
    assert event.actor == instructor and event.learner == learner
    assert event.submission_id == submission.pk and event.course_id == lab.module.course_id
    assert event.detail["from_score"] == 100.0
    assert event.detail["to_score"] == round(grade.score, 2) < 100.0  # a random tiny model
