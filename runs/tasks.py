"""Celery tasks: thin adapters that take an id and call a service.

Each keeps the name it was registered under when it lived in labs/ or grading/, so
messages already queued and beat entries still resolve."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_init, worker_ready
from django.conf import settings

from academy.deadlines import database_calls_bounded
from grading.services import RegradeImpossible, regrade_check, submission_regrade
from labs.models import Submission
from runs import inference, pipeline, precheck, sweep
from runs.jobs import (
    job_dir_for,
    jobs_disk_free,
    jobs_disk_has_room,
    jobs_retention,
    jobs_tidy,
)
from runs.serving import ServingRefused, heldout_served

logger = logging.getLogger(__name__)

# Below the Redis visibility timeout (1 h by default) so a live run is never
# delivered a second time; the sandbox's own wall limit is lower still.
SOFT_TIME_LIMIT = 3000
HARD_TIME_LIMIT = 3300


@shared_task(
    name="labs.tasks.run_submission",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=SOFT_TIME_LIMIT,
    time_limit=HARD_TIME_LIMIT,
)
def run_submission(submission_id: int | None = None, queue: str | None = None) -> None:
    """A wake-up for a queue: run its fairest queued row, whichever that is.

    submission_id is the row whose creation sent this message (kept for the logs and
    for messages sent before wake-ups existed, whose queue it tells)."""
    if queue is None:
        queue = pipeline.submission_queue(submission_id=submission_id)
    if not jobs_disk_has_room():
        # A run's files come back to this disk when it ends: leave the row queued for a
        # worker with room (the sweep wakes one up again), rather than fail it.
        logger.warning(
            "Not claiming a run of queue %s (wake-up %s): %s MB free for job folders, under "
            "ACADEMY_JOBS_MIN_FREE_MB=%s; the run stays queued.",
            queue,
            submission_id,
            jobs_disk_free() // (1024 * 1024),
            settings.ACADEMY_JOBS_MIN_FREE_MB,
        )
        return
    try:
        pipeline.submission_run_next(
            queue=queue, worker=run_submission.request.hostname, hint=submission_id
        )
    finally:
        _tidy_job_folders()


def _tidy_job_folders() -> None:
    """Only a graded run's checkpoint stays, for the retention: on the worker that ran it,
    since job folders live on its own disk."""
    try:
        with database_calls_bounded():  # a hung database must not hold the worker's slot
            jobs_tidy(retention=jobs_retention())
    except Exception:  # tidying never costs a run or a worker
        logger.exception("Could not tidy the job folders")


# Each database call of the sweep is bounded (ACADEMY_DATABASE_CALL_SECONDS); the limits
# catch what is not, so a sweep never holds a worker's slot for good.
@shared_task(
    name="labs.tasks.requeue_stale_runs", ignore_result=True, soft_time_limit=120, time_limit=150
)
def requeue_stale_runs() -> None:
    sweep.submissions_requeue_stale()


@worker_init.connect
def _preload_grading_libraries(**_: object) -> None:
    # Imported once here, before the pool forks: a child importing torch and transformers
    # at its first grading sits for seconds without a heartbeat (long enough, on a busy
    # box, to look dead and have its run requeued) and pays the import on the clock.
    import torch  # noqa: F401
    import transformers  # noqa: F401

    # Probed once per worker (the pool's children inherit it) and logged, so an operator
    # reads in the worker's log what it enforces on learner code.
    from sandbox import capabilities_report

    report = capabilities_report(
        settings.ACADEMY_SANDBOX_CGROUP_PARENT,
        settings.ACADEMY_SANDBOX_PIDS_CGROUP_PARENT,
        settings.ACADEMY_SANDBOX_UID_RANGE,
    )
    for line in report.splitlines():
        logger.info("Sandbox: %s", line)


@worker_ready.connect
def _requeue_on_worker_start(**_: object) -> None:
    # A worker coming up is the moment runs orphaned by a dead one are found.
    try:
        requeued = sweep.submissions_requeue_stale()
    except Exception:  # never keep a worker from starting
        logger.exception("Could not sweep stale runs at start-up")
        return
    if requeued:
        logger.warning("Requeued orphaned runs at start-up: %s", requeued)
    _tidy_job_folders()  # what runs that ended while no worker was up left behind
    # A worker that died just now still looks alive for a few seconds: look again once
    # its heartbeat must have gone stale, without waiting for (or relying on) beat.
    requeue_stale_runs.apply_async(countdown=settings.ACADEMY_STALE_RUN_SECONDS + 1)


# A precheck answers in seconds (its sandbox stops at 60 s); nothing of it is retried.
@shared_task(
    name="runs.tasks.run_precheck", ignore_result=True, soft_time_limit=100, time_limit=120
)
def run_precheck(precheck_id: int) -> None:
    with database_calls_bounded():
        precheck.precheck_run(precheck_id=precheck_id)


# A few texts through a kept checkpoint: seconds; the page gives up after 90 s.
@shared_task(
    name="runs.tasks.run_prediction", ignore_result=True, soft_time_limit=80, time_limit=100
)
def run_prediction(prediction_id: int) -> None:
    with database_calls_bounded():
        inference.prediction_run(prediction_id=prediction_id)


@shared_task(
    name="grading.tasks.regrade_submission",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=1200,
    time_limit=1300,
)
def regrade_submission(submission_id: int, requested_by_id: int | None = None) -> None:
    """Grade a kept checkpoint again, on the held-out texts served as its first grade had
    them: the serving stage runs here, on a worker, like the pipeline's (runs/serving.py)."""
    from django.contrib.auth import get_user_model

    submission = Submission.objects.select_related("lab__dataset").get(pk=submission_id)
    actor = get_user_model().objects.filter(pk=requested_by_id).first() if requested_by_id else None
    job_dir = job_dir_for(submission)
    try:
        regrade_check(submission=submission, job_dir=job_dir)
        texts = heldout_served(submission=submission)
        submission_regrade(submission=submission, job_dir=job_dir, texts=texts, actor=actor)
    except (RegradeImpossible, ServingRefused) as exc:
        # Nothing to retry: the files are gone, or the preprocess fails on the held-out texts
        # (the message says nothing of them). The admin's list shows it was not re-graded.
        logger.warning("Re-grade of submission %s impossible: %s", submission_id, exc)


@shared_task(
    name="grading.tasks.send_reminders",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=600,
    time_limit=660,
)
def send_reminders() -> None:
    """Beat job: enroll new members of assigned departments, then send due/overdue reminders.

    Idempotent: every email is keyed (grading.ReminderSent), so a rerun or a second beat
    sends nothing twice."""
    from grading.reports.services import department_assignments_sync, reminders_send

    department_assignments_sync()
    reminders_send()
