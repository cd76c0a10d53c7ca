"""The periodic sweep is quiet at INFO unless it did something (issue 17)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from celery.app.trace import LOG_RECEIVED
from django.utils import timezone

from labs.models import Submission
from runs.tasks import requeue_stale_runs


def _routine_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "requeue_stale_runs" in r.getMessage()]


@pytest.mark.django_db
def test_an_idle_sweep_logs_nothing_at_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    # Beat's and the worker's lines, as Celery writes them, then the task through its tracer.
    logging.getLogger("celery.beat").info(
        "Scheduler: Sending due task %s (%s)", "requeue-stale-runs", "labs.tasks.requeue_stale_runs"
    )
    logging.getLogger("celery.worker.strategy").info(
        LOG_RECEIVED, {"id": "x", "name": "labs.tasks.requeue_stale_runs"}
    )
    requeue_stale_runs.apply()
    assert _routine_lines(caplog) == []
    assert caplog.records == []


@pytest.mark.django_db
def test_other_tasks_still_log_their_receipt(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("celery.worker.strategy").info(
        LOG_RECEIVED, {"id": "x", "name": "labs.tasks.run_submission"}
    )
    assert [r.getMessage() for r in caplog.records] == [
        "Task labs.tasks.run_submission[x] received"
    ]


@pytest.mark.django_db
def test_the_sweeps_lines_show_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    requeue_stale_runs.apply()
    assert [r.levelname for r in caplog.records if "requeue_stale_runs" in r.getMessage()] == [
        "DEBUG"
    ]


@pytest.mark.django_db
def test_a_sweep_that_requeues_says_so(caplog: pytest.LogCaptureFixture, learner, lab) -> None:
    caplog.set_level(logging.INFO)
    stale = Submission.objects.create(
        learner=learner,
        lab=lab,
        code="x = 1",
        status=Submission.Status.RUNNING,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    requeue_stale_runs.apply()
    assert f"Requeued submission {stale.pk}: heartbeat stopped" in caplog.messages
