"""A check's retry rules: a cap on attempts and a cool-down after a failed one."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from courses.models import CheckAttempt, Module
from courses.services import CheckRetryRefused
from grading.services import check_attempt_submit
from tests.factories import UserFactory
from tests.grading.test_knowledge_checks import answers


def limit(module: Module, *, cap: int | None = None, cooldown: int = 0) -> None:
    module.check_max_attempts = cap
    module.check_cooldown_minutes = cooldown
    module.save(update_fields=["check_max_attempts", "check_cooldown_minutes"])


def backdate_last_attempt(module: Module, minutes: int) -> None:
    last = CheckAttempt.objects.filter(module=module).first()
    assert last is not None
    last.submitted_at = timezone.now() - datetime.timedelta(minutes=minutes)
    last.save(update_fields=["submitted_at"])


def test_a_retry_inside_the_cool_down_is_refused_with_when_it_opens(learner, checked, settings):
    settings.TIME_ZONE = "UTC"
    limit(checked, cooldown=30)
    check_attempt_submit(learner=learner, module=checked, answers=answers(checked, right=False))
    backdate_last_attempt(checked, 10)
    opens = CheckAttempt.objects.get().submitted_at + datetime.timedelta(minutes=30)
    with pytest.raises(CheckRetryRefused) as info:
        check_attempt_submit(learner=learner, module=checked, answers=answers(checked))
    when = f"{opens:%H:%M} on {opens.day} {opens:%b %Y} (UTC)"
    assert info.value.message == (
        "This knowledge check asks you to wait 30 minutes after a failed attempt: "
        f"your next attempt opens at {when}. Reread the lesson meanwhile."
    )
    assert info.value.status == 429
    assert CheckAttempt.objects.count() == 1


def test_after_the_cool_down_the_retry_is_graded(learner, checked):
    limit(checked, cooldown=30)
    check_attempt_submit(learner=learner, module=checked, answers=answers(checked, right=False))
    backdate_last_attempt(checked, 31)
    outcome = check_attempt_submit(learner=learner, module=checked, answers=answers(checked))
    assert outcome.attempt.number == 2 and outcome.attempt.passed


def test_the_cap_refuses_the_attempt_after_the_last_allowed(learner, checked):
    limit(checked, cap=2)
    for _ in range(2):
        check_attempt_submit(learner=learner, module=checked, answers=answers(checked, right=False))
    with pytest.raises(CheckRetryRefused, match="You have used all 2 attempts"):
        check_attempt_submit(learner=learner, module=checked, answers=answers(checked))
    assert CheckAttempt.objects.count() == 2


def test_without_limits_retries_are_graded_at_once(learner, checked):
    for _ in range(3):
        check_attempt_submit(learner=learner, module=checked, answers=answers(checked, right=False))
    assert CheckAttempt.objects.count() == 3


def test_the_cool_down_is_per_learner(learner, checked):
    limit(checked, cooldown=30)
    check_attempt_submit(learner=learner, module=checked, answers=answers(checked, right=False))
    other = UserFactory(username="otto")
    outcome = check_attempt_submit(learner=other, module=checked, answers=answers(checked))
    assert outcome.attempt.number == 1 and outcome.attempt.passed


def test_the_module_page_shows_the_rules_and_when_the_next_attempt_opens(client, learner, checked):
    limit(checked, cap=3, cooldown=30)
    client.force_login(learner)
    url = reverse("courses:module-check", args=[checked.course.slug, checked.slug])
    data = {
        f"question-{q.pk}": [str(o.pk) for o in q.options.all() if not o.is_correct][:1]
        for q in checked.questions.all()
    }
    body = client.post(url, data, HTTP_HX_REQUEST="true").content.decode()
    assert "At most 3 attempts. After a failed attempt, wait 30 minutes" in body
    assert 'id="check-submit"' not in body and "your next attempt opens at" in body
    refused = client.post(url, data, HTTP_HX_REQUEST="true")
    assert refused.status_code == 429 and "your next attempt opens at" in refused.content.decode()
