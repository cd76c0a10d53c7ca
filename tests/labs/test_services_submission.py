from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from labs.models import Submission
from labs.services.submissions import SubmissionRefused, submission_cancel, submission_create
from runs.pipeline import submission_claim
from runs.sweep import submissions_requeue_stale
from tests.conftest import TINY_SOLUTION


def test_valid_code_is_queued_and_enqueued_on_commit_with_the_id_only(
    learner, lab, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submission = submission_create(learner=learner, lab=lab, code=TINY_SOLUTION)
    assert submission.status == Submission.Status.QUEUED
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("def f(:\n    pass\n", "Syntax error on line 1"),
        ("   \n", "Your code is empty"),
        ("x = 1\n" * 20000, "larger than 64 KB"),
    ],
    ids=["syntax", "empty", "too-large"],
)
def test_bad_code_is_refused_before_anything_runs(learner, lab, code, message):
    with pytest.raises(SubmissionRefused, match=message):
        submission_create(learner=learner, lab=lab, code=code)
    assert not Submission.objects.exists()


@pytest.mark.parametrize(
    "code",
    [
        "HYPERPARAMETERS = {'epochs': 1}\n",
        "preprocess = lambda text: text\n",
        "class Hooks:\n    def preprocess(self, text):\n        return text\n",
    ],
    ids=["no-hook", "lambda", "method"],
)
def test_code_without_the_labs_required_hook_is_refused_naming_it(learner, lab, code):
    assert lab.required_hooks == ["preprocess"]
    with pytest.raises(SubmissionRefused, match="asks you to write `preprocess`"):
        submission_create(learner=learner, lab=lab, code=code)
    assert not Submission.objects.exists()


def test_code_too_deeply_nested_to_parse_is_refused_with_a_message(learner, lab):
    with pytest.raises(SubmissionRefused, match="nested too deeply"):
        submission_create(learner=learner, lab=lab, code="x = " + "a+" * 31000 + "a")
    assert not Submission.objects.exists()


def test_one_active_run_per_learner_and_lab(learner, outsider, lab):
    submission_create(learner=learner, lab=lab, code=TINY_SOLUTION)
    with pytest.raises(SubmissionRefused, match="already have a run in progress"):
        submission_create(learner=learner, lab=lab, code=TINY_SOLUTION)
    submission_create(learner=outsider, lab=lab, code=TINY_SOLUTION)  # others are not blocked


def test_database_forbids_two_active_runs_even_without_the_service(learner, lab):
    from django.db import IntegrityError

    Submission.objects.create(learner=learner, lab=lab, code="x=1", status="running")
    with pytest.raises(IntegrityError):
        Submission.objects.create(learner=learner, lab=lab, code="x=1", status="queued")


def test_daily_attempts_count_only_runs_that_reached_the_code(learner, lab):
    lab.attempts_per_day = 2
    lab.save()
    Submission.objects.create(
        learner=learner, lab=lab, code="x", status="error", counts_as_attempt=True
    )
    Submission.objects.create(
        learner=learner, lab=lab, code="x", status="failed", counts_as_attempt=False
    )
    Submission.objects.create(
        learner=learner, lab=lab, code="x", status="cancelled", counts_as_attempt=False
    )
    submission_create(learner=learner, lab=lab, code=TINY_SOLUTION)  # the second attempt is allowed
    Submission.objects.filter(status="queued").update(status="trained", counts_as_attempt=True)
    with pytest.raises(SubmissionRefused, match="used all 2 attempts for today; they reset at"):
        submission_create(learner=learner, lab=lab, code=TINY_SOLUTION)


def test_yesterdays_attempts_do_not_count(learner, lab):
    lab.attempts_per_day = 1
    lab.save()
    old = Submission.objects.create(
        learner=learner, lab=lab, code="x", status="trained", counts_as_attempt=True
    )
    Submission.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - datetime.timedelta(days=1, hours=1)
    )
    submission_create(learner=learner, lab=lab, code=TINY_SOLUTION)


def test_a_second_claim_of_the_same_run_finds_nothing(learner, lab):
    submission = Submission.objects.create(learner=learner, lab=lab, code=TINY_SOLUTION)
    assert submission_claim(submission_id=submission.pk, worker="w1") is not None
    assert submission_claim(submission_id=submission.pk, worker="w2") is None
    submission.refresh_from_db()
    assert (submission.status, submission.deliveries, submission.worker) == ("running", 1, "w1")


def test_stale_running_runs_are_requeued_and_fresh_ones_are_not(
    learner, outsider, lab, settings, django_capture_on_commit_callbacks
):
    settings.ACADEMY_STALE_RUN_SECONDS = 30
    now = timezone.now()
    stale = Submission.objects.create(
        learner=learner,
        lab=lab,
        code="x",
        status="running",
        deliveries=1,
        heartbeat_at=now - datetime.timedelta(seconds=90),
    )
    fresh = Submission.objects.create(
        learner=outsider, lab=lab, code="x", status="running", deliveries=1, heartbeat_at=now
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert submissions_requeue_stale() == [stale.pk]
    assert len(callbacks) == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, fresh.status) == ("queued", "running")


def test_a_run_lost_too_often_fails_without_costing_an_attempt(learner, lab, settings):
    settings.ACADEMY_STALE_RUN_SECONDS = 30
    lost = Submission.objects.create(
        learner=learner,
        lab=lab,
        code="x",
        status="running",
        deliveries=3,
        counts_as_attempt=True,
        heartbeat_at=timezone.now() - datetime.timedelta(minutes=5),
    )
    assert submissions_requeue_stale() == []
    lost.refresh_from_db()
    assert lost.status == "failed"
    assert "not your fault" in lost.error_message


def test_cancel_a_queued_run_is_immediate(learner, lab):
    submission = Submission.objects.create(learner=learner, lab=lab, code="x")
    assert submission_cancel(submission=submission).status == "cancelled"


def test_cancel_a_running_run_asks_its_worker(learner, lab):
    submission = Submission.objects.create(learner=learner, lab=lab, code="x", status="running")
    cancelled = submission_cancel(submission=submission)
    assert cancelled.status == "running"
    assert cancelled.cancel_requested
