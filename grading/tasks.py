"""Celery tasks of the grading app: thin adapters around services."""

from __future__ import annotations

import logging

from celery import shared_task

from grading.services import RegradeImpossible, submission_regrade
from labs.models import Submission

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=1200, time_limit=1300)
def regrade_submission(submission_id: int) -> None:
    submission = Submission.objects.select_related("lab__dataset").get(pk=submission_id)
    try:
        submission_regrade(submission=submission)
    except RegradeImpossible as exc:
        # Nothing to retry: the files are gone. The admin's list shows it was not re-graded.
        logger.warning("Re-grade of submission %s impossible: %s", submission_id, exc)
