"""The sweep: runs whose worker died are queued again, and wake-ups a broker lost are sent again.

The database row, not the broker, is the truth (SANDBOX.md): a run whose heartbeat
stopped is found here and requeued, so a worker killed outright loses nothing
whatever the broker; a queued row without a message gets one.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import translation
from django.utils.translation import gettext as _

from academy.deadlines import database_calls_bounded, database_deadline
from courses.selectors import language_preference_of
from labs.models import Submission
from labs.selectors import stale_cutoff
from labs.services.submissions import queue_wake, submission_enqueue_on_commit, submission_finish

logger = logging.getLogger(__name__)

# A run that lost its worker this many times ends failed instead of being requeued again.
MAX_DELIVERIES = 3


def submissions_requeue_stale() -> list[int]:
    """Requeue running runs whose heartbeat stopped (their worker died). Returns their ids.

    Also makes up wake-ups a broker lost (a restart without persistence, the
    filesystem broker under a killed worker): a queue whose rows waited longer
    than the stale limit gets as many messages as it has rows and lacks.
    """
    # The sweep runs on a worker: a hung database must not hold that worker's slot.
    with database_calls_bounded():
        return _requeue_stale()


def _requeue_stale() -> list[int]:
    requeued = []
    for submission in Submission.objects.filter(
        status=Submission.Status.RUNNING, heartbeat_at__lt=stale_cutoff()
    ).select_related("lab"):
        if submission.deliveries >= MAX_DELIVERIES:
            language = language_preference_of(user=submission.learner) or settings.LANGUAGE_CODE
            with translation.override(language):  # stored on the row: worded for its reader
                message = _(
                    "The run was interrupted %(count)d times by worker failures. This is not "
                    "your fault and did not use an attempt."
                ) % {"count": submission.deliveries}
            submission_finish(
                submission,
                Submission.Status.FAILED,
                owner_check=False,
                error_message=message,
            )
            continue
        with database_deadline(), transaction.atomic():
            moved = Submission.objects.filter(
                pk=submission.pk, status=Submission.Status.RUNNING, heartbeat_at__lt=stale_cutoff()
            ).update(status=Submission.Status.QUEUED, worker="", counts_as_attempt=False)
            if moved:
                logger.warning("Requeued submission %s: heartbeat stopped", submission.pk)
                requeued.append(submission.pk)
                submission_enqueue_on_commit(submission)
    _wake_stranded()
    return requeued


def _wake_stranded() -> None:
    waiting = dict(
        Submission.objects.filter(status=Submission.Status.QUEUED)
        .order_by()
        .values("lab__queue")
        .annotate(n=Count("pk"))
        .values_list("lab__queue", "n")
    )
    old = set(
        Submission.objects.filter(status=Submission.Status.QUEUED, created_at__lt=stale_cutoff())
        .order_by()
        .values_list("lab__queue", flat=True)
        .distinct()
    )
    for queue in old:
        messages = messages_waiting(queue)
        # A broker that cannot count: wake one worker per sweep rather than flood the queue.
        missing = 1 if messages is None else waiting.get(queue, 0) - messages
        if missing > 0:
            logger.warning("Queue %s: %s queued runs had no message; sent wake-ups", queue, missing)
            for _wake in range(missing):
                queue_wake(queue=queue)


def messages_waiting(queue: str) -> int | None:
    from kombu.exceptions import ChannelError

    from academy.celery import app

    try:
        with app.connection_for_write() as conn:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:  # Redis keeps no empty queue: nothing waits in it
        return 0
    except Exception:
        logger.exception("Could not count the messages of queue %s", queue)
        return None
