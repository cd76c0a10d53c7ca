"""Writes for the short worker queries a learner asks for: a precheck of their code, and
predictions from a graded run's checkpoint. Each is a row the page polls and a message by
name to a fast queue of its own, so it never waits behind a training run."""

from __future__ import annotations

import datetime
from typing import TypeVar

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from academy.celery import app as celery_app
from academy.refusals import Refusal
from labs.models import Lab, Precheck, Prediction, Submission, WorkerQuery
from labs.services.submissions import MAX_CODE_BYTES

# The registered task names (runs/tasks.py) and the queues their workers serve.
PRECHECK_TASK = "runs.tasks.run_precheck"
PREDICT_TASK = "runs.tasks.run_prediction"
PRECHECK_QUEUE = "precheck"
INFERENCE_QUEUE = "inference"
# A query no worker finished in this long is given up (a worker died, or none serves the
# queue): the page says so rather than wait for ever.
GIVE_UP_AFTER = datetime.timedelta(seconds=90)

MAX_TEXTS = 8
MAX_TEXT_CHARS = 1000


Query = TypeVar("Query", bound=WorkerQuery)


class QueryRefused(Refusal):
    status = 422


def precheck_create(*, learner: User, lab: Lab, code: str) -> Precheck:
    """Queue a precheck of `code` for `lab`. Uses no attempt; the engine reports syntax errors."""
    if len(code.encode()) > MAX_CODE_BYTES:
        raise QueryRefused(
            _("Your code is larger than %(kb)s KB.") % {"kb": MAX_CODE_BYTES // 1024}
        )
    if not code.strip():
        raise QueryRefused(_("Your code is empty: there is nothing to check."))
    with transaction.atomic():
        precheck = Precheck.objects.create(learner=learner, lab=lab, code=code)
        transaction.on_commit(
            lambda: celery_app.send_task(PRECHECK_TASK, args=[precheck.pk], queue=PRECHECK_QUEUE)
        )
    return precheck


def prediction_create(*, learner: User, submission: Submission, texts: list[str]) -> Prediction:
    """Queue the learner's texts for their graded run's checkpoint."""
    if submission.learner_id != learner.pk:
        raise QueryRefused(_("This is not your run."), status=404)
    if submission.status != Submission.Status.GRADED:
        raise QueryRefused(_("Only a graded run's model can be tried."))
    texts = [text.strip() for text in texts if text.strip()]
    if not texts:
        raise QueryRefused(_("Type at least one text, one per line."))
    if len(texts) > MAX_TEXTS:
        raise QueryRefused(
            _("At most %(most)s texts at a time; you sent %(sent)s.")
            % {"most": MAX_TEXTS, "sent": len(texts)}
        )
    longest = max(len(text) for text in texts)
    if longest > MAX_TEXT_CHARS:
        raise QueryRefused(
            _("Each text may be at most %(most)s characters; one has %(longest)s.")
            % {"most": f"{MAX_TEXT_CHARS:,}", "longest": f"{longest:,}"}
        )
    with transaction.atomic():
        prediction = Prediction.objects.create(learner=learner, submission=submission, texts=texts)
        transaction.on_commit(
            lambda: celery_app.send_task(PREDICT_TASK, args=[prediction.pk], queue=INFERENCE_QUEUE)
        )
    return prediction


def query_claim(query: type[WorkerQuery], *, pk: int) -> bool:
    """queued → running; False when another delivery (or the give-up) got there first."""
    return bool(
        query.objects.filter(pk=pk, status=WorkerQuery.Status.QUEUED).update(  # type: ignore[attr-defined]
            status=WorkerQuery.Status.RUNNING, started_at=timezone.now()
        )
    )


def query_give_up_if_stale(row: Query) -> Query:
    """Fail a query no worker finished in GIVE_UP_AFTER; the row as it now is."""
    if row.is_active and row.created_at < timezone.now() - GIVE_UP_AFTER:
        type(row).objects.filter(pk=row.pk, status__in=WorkerQuery.ACTIVE).update(  # type: ignore[attr-defined]
            status=WorkerQuery.Status.FAILED,
            finished_at=timezone.now(),
            error_message="No worker answered in time (nothing was used up). Try again in a "
            "minute; if it keeps happening, tell your instructor.",
        )
        row.refresh_from_db()
    return row
