"""Celery tasks of the grading app: thin adapters around services."""

from __future__ import annotations

import logging

from celery import shared_task

from grading.services import RegradeImpossible, submission_regrade
from labs.models import Submission

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=1200, time_limit=1300)
def regrade_submission(submission_id: int, requested_by_id: int | None = None) -> None:
    from django.contrib.auth import get_user_model

    submission = Submission.objects.select_related("lab__dataset").get(pk=submission_id)
    actor = get_user_model().objects.filter(pk=requested_by_id).first() if requested_by_id else None
    try:
        submission_regrade(submission=submission, actor=actor)
    except RegradeImpossible as exc:
        # Nothing to retry: the files are gone. The admin's list shows it was not re-graded.
        logger.warning("Re-grade of submission %s impossible: %s", submission_id, exc)


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=600, time_limit=660)
def send_reminders() -> None:
    """Beat job: enroll new members of assigned departments, then send due/overdue reminders.

    Idempotent: every email is keyed (grading.ReminderSent), so a rerun or a second beat
    sends nothing twice."""
    from grading.reports.services import department_assignments_sync, reminders_send

    department_assignments_sync()
    reminders_send()
