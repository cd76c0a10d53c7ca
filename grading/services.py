"""Writes to learner progress. Each function owns its transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from academy.deadlines import database_deadline
from academy.refusals import Refusal
from courses.models import Course, Enrollment, Module
from courses.selectors import module_has_check
from courses.services import CheckOutcome, check_attempt_record, enrollment_create
from grading.evaluation import (
    CheckpointRejected,
    Evaluation,
    check_weights,
    classification_metrics,
    load_checkpoint,
    predict,
    router_metrics,
    rubric_score,
)
from grading.models import AuditEvent, Grade, ModuleProgress
from grading.selectors import METRIC_NAMES, course_progress, lab_weight_rules
from labs.models import Lab, Submission
from labs.selectors import heldout_rows
from labs.services.submissions import submission_finish

logger = logging.getLogger(__name__)


class ProgressError(Refusal):
    """A progress change the rules do not allow; the message is shown to the learner."""


class ModuleLocked(ProgressError):
    status = 403


class NotSelfCompletable(ProgressError):
    status = 403


def module_start(*, learner: User, module: Module) -> ModuleProgress:
    """Record that a learner opened a module (first visit only)."""
    progress, created = ModuleProgress.objects.get_or_create(learner=learner, module=module)
    if created:
        enrollment_progress_changed(learner=learner, course=module.course)
    return progress


def _progress_of_open_module(*, learner: User, module: Module) -> ModuleProgress:
    """The learner's progress row for `module`, locked for update; ModuleLocked (naming what
    is missing) while an earlier stage is unfinished. Enrolls the learner on first contact."""
    stage = course_progress(learner=learner, course=module.course).stage_of(module)
    if not stage.is_open:
        names = ", ".join(f"“{m.module.title}”" for m in stage.missing)
        raise ModuleLocked(
            _("This module is locked. Complete first: %(names)s.") % {"names": names}
        )
    enrollment_create(learner=learner, course=module.course)
    progress, _created = ModuleProgress.objects.select_for_update().get_or_create(
        learner=learner, module=module
    )
    return progress


@transaction.atomic
def module_mark_complete(*, learner: User, module: Module) -> ModuleProgress:
    """A learner finishes a theory or case-study module themselves.

    Refused for locked modules (the rule is enforced here, not only hidden in
    the page) and for labs, which complete only through a passing grade.
    """
    if module.kind == Module.Kind.LAB:
        raise NotSelfCompletable(_("A code lab is completed by passing its auto-graded run."))
    if module_has_check(module=module):
        raise NotSelfCompletable(
            _("This module has a knowledge check: it is completed by passing the check.")
        )
    progress = _progress_of_open_module(learner=learner, module=module)
    if progress.status != ModuleProgress.Status.COMPLETED:
        progress.status = ModuleProgress.Status.COMPLETED
        progress.completed_at = timezone.now()
        progress.save(update_fields=["status", "completed_at", "updated_at"])
    enrollment_refresh_completion(learner=learner, module=module)
    return progress


def progress_record_result(
    progress: ModuleProgress,
    *,
    score: float,
    passed: bool,
    submission: Submission | None = None,
    recount: bool = False,
) -> None:
    """The progress rule, for lab runs and knowledge checks alike: keep the best score,
    complete the module on a pass, never revoke a completion.

    `recount` (after a re-grade): the score given is the best of the current grades, so
    it replaces the kept one even when lower; a completion still stands. The caller holds
    the row locked (select_for_update) inside its transaction."""
    fields = ["updated_at"]
    if recount or progress.best_score is None or score > progress.best_score:
        progress.best_score = score
        fields.append("best_score")
        if submission is not None:
            progress.best_submission = submission
            fields.append("best_submission")
    if passed and progress.status != ModuleProgress.Status.COMPLETED:
        progress.status = ModuleProgress.Status.COMPLETED
        progress.completed_at = timezone.now()
        fields += ["status", "completed_at"]
    progress.save(update_fields=fields)


def enrollment_progress_changed(*, learner: User, course: Course) -> None:
    """Mark the learner's pages of this course out of date (see web/pagecache.py).

    Called after the progress write it follows (module_start; every other progress
    write bumps the version in enrollment_refresh_completion, inside its transaction),
    so no reader sees the new version before the progress it stands for.
    """
    Enrollment.objects.filter(learner=learner, course=course).update(
        progress_version=F("progress_version") + 1
    )


def enrollment_refresh_completion(*, learner: User, module: Module) -> None:
    """After any progress change: set (or clear) the enrollment's completion from the
    learner's progress, and mark their pages of the course out of date."""
    complete = course_progress(learner=learner, course=module.course).is_complete
    enrollment = Enrollment.objects.filter(learner=learner, course=module.course).first()
    if enrollment is None:
        return
    fields: dict[str, Any] = {"progress_version": F("progress_version") + 1}
    if complete and enrollment.completed_at is None:
        fields["completed_at"] = timezone.now()
    elif not complete and enrollment.completed_at is not None:
        fields["completed_at"] = None
    Enrollment.objects.filter(pk=enrollment.pk).update(**fields)


# --------------------------------------------------------------------------
# Grading lab runs


def rubric_metric(lab: Lab, metrics: dict[str, Any]) -> float:
    """The number the lab is graded on, taken from the full metric set."""
    if lab.metric == Lab.Metric.ACCURACY:
        return float(metrics["accuracy"])
    if lab.metric == Lab.Metric.MACRO_F1:
        return float(metrics["macro_f1"])
    if lab.metric == Lab.Metric.ROUTER:
        return float(metrics["router"]["harmonic_mean"])
    for row in metrics["per_class"]:
        if row["label"] == lab.metric_label:
            return float(row["f1"])
    raise ValueError(f"metric label {lab.metric_label!r} is not a label of {lab.dataset.slug}")


# What the result panel calls the graded number (Grade.metric, at most 40 characters).


def floor_results(lab: Lab, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Each of the lab's floors against the metrics: required, actual, met, and for a
    per-class floor the worst class (the one that decides it)."""
    results = []
    for name in Lab.Floor.values:  # a fixed order, whatever order the rubric names them in
        if name not in lab.pass_floors:
            continue
        required = float(lab.pass_floors[name])
        label = None
        if name == Lab.Floor.MACRO_F1:
            actual = float(metrics["macro_f1"])
        else:
            key = "recall" if name == Lab.Floor.CLASS_RECALL else "f1"
            # A class absent from the held-out split cannot be found: it decides nothing.
            present = [row for row in metrics["per_class"] if row["support"]]
            worst = min(present, key=lambda row: row[key])
            actual, label = float(worst[key]), worst["label"]
        results.append(
            {
                "floor": name,
                "required": required,
                "actual": actual,
                "met": actual >= required,
                "label": label,
            }
        )
    return results


def grade_values(lab: Lab, metrics: dict[str, Any]) -> dict[str, Any]:
    """The Grade fields the lab's current rubric gives `metrics`: a pass needs the pass mark
    and every floor."""
    value = rubric_metric(lab, metrics)
    score = rubric_score(value, baseline=lab.baseline, target=lab.target)
    floors = floor_results(lab, metrics)
    return {
        "metric": METRIC_NAMES.get(lab.metric, lab.metric).format(label=lab.metric_label),
        "metric_value": value,
        "score": score,
        "passed": score >= lab.pass_mark and all(floor["met"] for floor in floors),
        "baseline": lab.baseline,
        "target": lab.target,
        "pass_mark": lab.pass_mark,
        "floors": floors,
        "metrics": metrics,
    }


def checkpoint_predictions(lab: Lab, job_dir: Path, texts: Sequence[str]) -> list[dict[str, Any]]:
    """Each text's predicted label and class probabilities from the checkpoint in `job_dir`,
    loaded and run as grading does (texts as served by the worker). Raises CheckpointRejected."""
    from labs.training.base_models import resolve_base_model

    labels = list(lab.dataset.labels)
    base_model = resolve_base_model(lab.base_model)
    model = load_checkpoint(str(job_dir), base_model=base_model, labels=labels)
    found = predict(
        model,
        list(texts),
        base_model=base_model,
        precision=settings.ACADEMY_GRADING_PRECISION,
        with_probabilities=True,
    )
    return [
        {
            "label": labels[label],
            "probabilities": sorted(
                zip(labels, row, strict=True), key=lambda pair: pair[1], reverse=True
            ),
        }
        for label, row in zip(found.predictions, found.probabilities, strict=True)
    ]


def evaluate_checkpoint(
    lab: Lab,
    job_dir: Path,
    *,
    texts: Sequence[str] | None = None,
    heartbeat: Callable[[], None] = lambda: None,
) -> tuple[dict[str, Any], Evaluation]:
    """Score the checkpoint in `job_dir` on the lab's held-out split (raises CheckpointRejected,
    also for weights that differ from the base model more than the lab allows).

    `texts`: the held-out texts as served (through the learner's preprocess, by the
    worker's serving stage), one for each held-out row in its order; None: the raw texts."""
    from labs.training.base_models import resolve_base_model

    heldout = heldout_rows(dataset=lab.dataset)
    if texts is not None and len(texts) != len(heldout):
        raise ValueError(f"{len(texts)} served texts for {len(heldout)} held-out rows")
    labels = list(lab.dataset.labels)
    index = {label: i for i, label in enumerate(labels)}
    base_model = resolve_base_model(lab.base_model)
    try:
        model = load_checkpoint(str(job_dir), base_model=base_model, labels=labels)
        weights = check_weights(model, base_model=base_model, rules=lab_weight_rules(lab))
        heartbeat()
        evaluation = predict(
            model,
            [text for text, _ in heldout] if texts is None else texts,
            base_model=base_model,
            precision=settings.ACADEMY_GRADING_PRECISION,
            on_batch=heartbeat,
        )
    except (CheckpointRejected, DatabaseError):
        raise
    except Exception as exc:
        # Whatever in the learner's checkpoint broke the grader is the learner's to hear of,
        # by kind only: the exception's text could hold a host path or a held-out text.
        # The traceback is the operators', who may have a grader bug to fix.
        logger.exception("The checkpoint in %s broke the grader", job_dir)
        raise CheckpointRejected(
            _(
                "The grader could not use your checkpoint (%(error)s while reading or running "
                "it). Save it as the engine does (a plain model, float32 weights); if your code "
                "does not change how it is saved, tell your instructor."
            )
            % {"error": type(exc).__name__}
        ) from exc
    gold = [index[label] for _text, label in heldout]
    metrics = classification_metrics(gold, evaluation.predictions, labels)
    if lab.metric == Lab.Metric.ROUTER:
        metrics["router"] = router_metrics(
            gold, evaluation.predictions, labels, out_of_scope=lab.metric_label
        )
    evaluation.weights = weights
    return metrics, evaluation


def submission_grade(
    *,
    submission: Submission,
    job_dir: Path,
    texts: Sequence[str] | None = None,
    heartbeat: Callable[[], None],
) -> None:
    """Post-training step in the worker: held-out evaluation, Grade, progress. Idempotent.

    `texts`: the served held-out texts (see evaluate_checkpoint)."""
    lab = submission.lab
    try:
        metrics, evaluation = evaluate_checkpoint(lab, job_dir, texts=texts, heartbeat=heartbeat)
    except CheckpointRejected as exc:
        submission_finish(
            submission, Submission.Status.REJECTED, counts_as_attempt=True, error_message=str(exc)
        )
        return
    # The deadline covers the COMMIT too: a hang here reads as a dropped connection, the
    # transaction lands whole or not at all, and a run left running is retried.
    with database_deadline(), transaction.atomic():
        # Finishing the row is the claim on this result: if another worker owns the run
        # now (we were presumed dead), nothing is written.
        if not submission_finish(submission, Submission.Status.GRADED):
            return
        grade, created = Grade.objects.get_or_create(
            submission=submission,
            defaults={
                **grade_values(lab, metrics),
                "heldout_size": len(evaluation.predictions),
                "eval_seconds": evaluation.seconds,
                "eval_samples_per_second": evaluation.samples_per_second,
                "device": evaluation.device,
                "weight_check": evaluation.weights,
            },
        )
        if created:
            grade_apply(grade=grade)


def grade_apply(*, grade: Grade) -> None:
    """Carry a grade into progress (best score, completion) or into the lab's validation record."""
    submission = grade.submission
    lab = submission.lab
    if submission.validation_of:
        # The reference's and starter's scores are the lab's record; an ablation's grade is
        # its own record (validate_course's table reads it).
        if submission.validation_of in ("reference", "starter"):
            field = f"{submission.validation_of}_score"
            # validated_at is stamped once the last of the lab's validation runs has ended
            # (labs.services.submissions.lab_validation_close).
            Lab.objects.filter(pk=lab.pk).update(**{field: grade.score})
        return
    progress, _created = ModuleProgress.objects.select_for_update().get_or_create(
        learner=submission.learner, module=lab.module
    )
    progress_record_result(progress, score=grade.score, passed=grade.passed, submission=submission)
    enrollment_refresh_completion(learner=submission.learner, module=lab.module)


class RegradeImpossible(Exception):
    pass


def regrade_check(*, submission: Submission, job_dir: Path) -> None:
    """Raise RegradeImpossible unless the run is graded and its checkpoint is still here."""
    if submission.status != Submission.Status.GRADED:
        raise RegradeImpossible(
            _("Run #%(run)s is %(status)s, not graded.")
            % {"run": submission.pk, "status": str(submission.get_status_display()).lower()}
        )
    if not (job_dir / "checkpoint").is_dir():
        raise RegradeImpossible(
            _(
                "The files of run #%(run)s were cleaned up (or are on another worker): it "
                "cannot be re-graded without training again."
            )
            % {"run": submission.pk}
        )


def submission_regrade(
    *,
    submission: Submission,
    job_dir: Path,
    texts: Sequence[str] | None = None,
    actor: User | None = None,
) -> Grade:
    """Score the checkpoint in `job_dir` again under the lab's current rubric (its floors
    included), without retraining.

    `texts`: the served held-out texts, as for the first grade (see evaluate_checkpoint).
    The audit trail records who asked for it and the score before and after. A checkpoint
    the lab's current weight rules refuse keeps its grade (a completion is never revoked)
    and is reported as not re-graded."""
    regrade_check(submission=submission, job_dir=job_dir)
    try:
        metrics, evaluation = evaluate_checkpoint(submission.lab, job_dir, texts=texts)
    except CheckpointRejected as exc:
        raise RegradeImpossible(
            _("Run #%(run)s was not re-graded: the lab now refuses its checkpoint. %(reason)s")
            % {"run": submission.pk, "reason": exc}
        ) from None
    with transaction.atomic():
        grade = Grade.objects.select_for_update().get(submission=submission)
        before = {"score": grade.score, "passed": grade.passed}
        for name, value in grade_values(submission.lab, metrics).items():
            setattr(grade, name, value)
        grade.eval_seconds, grade.eval_samples_per_second = (
            evaluation.seconds,
            evaluation.samples_per_second,
        )
        grade.weight_check = evaluation.weights
        grade.regraded_at = timezone.now()
        grade.save()
        AuditEvent.objects.create(
            actor=actor,
            action=AuditEvent.Action.REGRADED,
            learner_id=submission.learner_id,
            course_id=submission.lab.module.course_id,
            submission=submission,
            detail={
                "from_score": round(before["score"], 2),
                "to_score": round(grade.score, 2),
                "from_passed": before["passed"],
                "to_passed": grade.passed,
            },
        )
        if not submission.validation_of:
            progress_recompute_best(learner=submission.learner, module=submission.lab.module)
        else:
            grade_apply(grade=grade)
    return grade


def progress_recompute_best(*, learner: User, module: Module) -> None:
    """After a re-grade: the best score is the best current grade. A completion is never revoked."""
    best = (
        Grade.objects.filter(
            submission__learner=learner,
            submission__lab__module=module,
            submission__validation_of="",
        )
        .order_by("-score", "graded_at")
        .select_related("submission")
        .first()
    )
    if best is None:
        return
    progress, _created = ModuleProgress.objects.select_for_update().get_or_create(
        learner=learner, module=module
    )
    progress_record_result(
        progress, score=best.score, passed=best.passed, submission=best.submission, recount=True
    )
    enrollment_refresh_completion(learner=learner, module=module)


# --------------------------------------------------------------------------
# Knowledge checks


class CheckNotAnswerable(ProgressError):
    status = 400


@transaction.atomic
def check_attempt_submit(
    *,
    learner: User,
    module: Module,
    answers: Mapping[int, Sequence[int]],
    draw_token: str | None = None,
    numbers: Mapping[int, float] | None = None,
) -> CheckOutcome:
    """A learner answers a module's knowledge check: record the attempt, complete on a pass.

    Every attempt is kept (who answered what, when, with what score). A pass
    completes the module, which may open the next stage; a later failed
    attempt never revokes a completion. Raises ModuleLocked for a locked
    module and CheckAnswerError for answers that cannot be graded.
    """
    if module.kind == Module.Kind.LAB:
        raise CheckNotAnswerable(_("A code lab has no knowledge check."))
    progress = _progress_of_open_module(learner=learner, module=module)
    outcome = check_attempt_record(
        learner=learner, module=module, answers=answers, draw_token=draw_token, numbers=numbers
    )
    progress_record_result(progress, score=outcome.attempt.score, passed=outcome.attempt.passed)
    enrollment_refresh_completion(learner=learner, module=module)
    return outcome
