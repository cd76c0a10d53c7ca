"""Writes for submissions on the web side: create (validated, queued on commit), cancel, validate."""

from __future__ import annotations

import ast
import logging
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from academy.celery import app as celery_app
from academy.refusals import Refusal
from labs.models import Lab, Submission
from labs.selectors import (
    attempts_reset_at,
    attempts_used_today,
)

logger = logging.getLogger(__name__)

MAX_CODE_BYTES = 64 * 1024
# The registered name of the wake-up task (runs/tasks.py), kept from when it lived in labs.
RUN_TASK = "labs.tasks.run_submission"


class SubmissionRefused(Refusal):
    """The submission was not accepted; the message tells the learner why."""

    status = 422


class SubmissionTooLarge(SubmissionRefused):
    """A submission whose request body was over the upload limit and was never read."""

    status = 413


def submission_too_large_message() -> str:
    return _("Your code is larger than %(kb)d KB. Nothing was run.") % {
        "kb": MAX_CODE_BYTES // 1024
    }


def submission_create(*, learner: User, lab: Lab, code: str) -> Submission:
    """Validate and queue a learner's run. Raises SubmissionRefused with a learner-facing message."""
    if len(code.encode()) > MAX_CODE_BYTES:
        raise SubmissionRefused(
            _("Your code is larger than %(kb)d KB.") % {"kb": MAX_CODE_BYTES // 1024}
        )
    if not code.strip():
        raise SubmissionRefused(_("Your code is empty."))
    try:
        tree = ast.parse(code, filename="solution.py")
    except SyntaxError as exc:
        where = (
            _("line %(line)s, column %(column)s") % {"line": exc.lineno, "column": exc.offset}
            if exc.offset
            else _("line %(line)s") % {"line": exc.lineno}
        )
        raise SubmissionRefused(
            _("Syntax error on %(where)s: %(error)s. Nothing was run.")
            % {"where": where, "error": exc.msg}
        ) from None
    except (RecursionError, MemoryError):
        # Nesting too deep for the parser's stack, e.g. 60 KB of a+a+…
        raise SubmissionRefused(
            _("Your code is nested too deeply for Python to parse. Nothing was run.")
        ) from None
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    missing = [hook for hook in lab.required_hooks if hook not in defined]
    if missing:
        # The lab's idea lives in these hooks: without them the engine's defaults would run.
        names = ", ".join(f"`{hook}`" for hook in missing)
        raise SubmissionRefused(
            _(
                "This lab asks you to write %(names)s: define it at the top level of your code "
                "(def %(first)s(...):). Nothing was run and no attempt was used."
            )
            % {"names": names, "first": missing[0]}
        )
    with transaction.atomic():
        # Lock the lab row so two simultaneous submits are counted one after the other.
        Lab.objects.select_for_update().filter(pk=lab.pk).first()
        if Submission.objects.filter(
            learner=learner, lab=lab, status__in=Submission.ACTIVE, validation_of=""
        ).exists():
            raise SubmissionRefused(
                _("You already have a run in progress for this lab; wait or cancel it.")
            )
        if attempts_used_today(learner=learner, lab=lab) >= lab.attempts_per_day:
            reset = timezone.localtime(attempts_reset_at()).strftime("%H:%M")
            raise SubmissionRefused(
                ngettext(
                    "You have used your %(count)d attempt for today; it resets at %(reset)s.",
                    "You have used all %(count)d attempts for today; they reset at %(reset)s.",
                    lab.attempts_per_day,
                )
                % {"count": lab.attempts_per_day, "reset": reset}
            )
        try:
            with transaction.atomic():
                submission = Submission.objects.create(learner=learner, lab=lab, code=code)
        except IntegrityError:
            raise SubmissionRefused(_("You already have a run in progress for this lab.")) from None
        submission_enqueue_on_commit(submission)
    return submission


def submission_enqueue_on_commit(submission: Submission) -> None:
    queue = submission.lab.queue
    transaction.on_commit(lambda: queue_wake(queue=queue, hint=submission.pk))


def queue_wake(*, queue: str, hint: int | None = None, countdown: float | None = None) -> None:
    """One wake-up message per queued row: whichever worker takes it claims the fairest row."""
    # By name: the task lives in runs/, which is built on labs and not imported by it.
    celery_app.send_task(
        RUN_TASK, kwargs={"submission_id": hint, "queue": queue}, queue=queue, countdown=countdown
    )


def submission_cancel(*, submission: Submission) -> Submission:
    """Cancel now if still queued; a running run is stopped by its worker within seconds."""
    cancelled_while_queued = Submission.objects.filter(
        pk=submission.pk, status=Submission.Status.QUEUED
    ).update(status=Submission.Status.CANCELLED, finished_at=timezone.now(), cancel_requested=True)
    if not cancelled_while_queued:
        Submission.objects.filter(pk=submission.pk, status=Submission.Status.RUNNING).update(
            cancel_requested=True
        )
    submission.refresh_from_db()
    return submission


def submission_finish(
    submission: Submission, status: str, *, owner_check: bool = True, **fields: Any
) -> bool:
    """Write a final state, only if this worker still owns the run."""
    rows = Submission.objects.filter(pk=submission.pk, status=Submission.Status.RUNNING)
    if owner_check:
        rows = rows.filter(deliveries=submission.deliveries)
    finished = bool(rows.update(status=status, finished_at=timezone.now(), **fields))
    if finished and submission.validation_of:
        lab_validation_close(lab_id=submission.lab_id)
    return finished


def lab_validation_close(*, lab_id: int) -> None:
    """Stamp the lab's `validated_at` once none of its validation runs is queued or running:
    a validation is done when its reference, starter and every ablation have ended, not
    when the first of them is graded."""
    active = Submission.objects.filter(lab_id=lab_id, status__in=Submission.ACTIVE).exclude(
        validation_of=""
    )
    if not active.exists():
        Lab.objects.filter(pk=lab_id).update(validated_at=timezone.now())


def lab_validation_runs(*, lab: Lab, by: User, references_only: bool = False) -> list[Submission]:
    """The runs that validate a lab, created queued: its reference solution, its unmodified
    starter code and each ablation (the reference without its idea); or the reference only."""
    variants = [
        ("reference", "", lab.reference_solution),
        ("starter", "", lab.starter_code),
        *(("ablation", a["name"], a["code"]) for a in lab.ablations),
    ][: 1 if references_only else None]
    return [
        Submission.objects.create(
            learner=by, lab=lab, code=code, validation_of=role, ablation=ablation
        )
        for role, ablation, code in variants
    ]


def lab_validate_enqueue(*, lab: Lab, by: User) -> list[Submission]:
    """Queue every validation run of the lab through the real pipeline, on the workers."""
    with transaction.atomic():
        runs = lab_validation_runs(lab=lab, by=by)
        for run in runs:
            submission_enqueue_on_commit(run)
    return runs
