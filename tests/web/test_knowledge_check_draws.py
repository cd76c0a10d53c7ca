"""Each attempt shows a draw: shuffled options, and N of a pool's M questions; the attempt
stores what it showed and the feedback replays it in that order."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from courses.models import CheckAttempt, Module
from tests.factories import UserFactory, make_check

HTMX = {"HTTP_HX_REQUEST": "true"}


def page_url(module: Module) -> str:
    return reverse("courses:module", args=[module.course.slug, module.slug])


def check_url(module: Module) -> str:
    return reverse("courses:module-check", args=[module.course.slug, module.slug])


def shown(html: str) -> tuple[str, list[list[int]]]:
    """The signed draw and, per question in page order, the option ids in page order."""
    token = re.search(r'name="draw" value="([^"]+)"', html)
    assert token is not None
    section = html[html.index('id="knowledge-check"') :]
    questions = re.split(r'<fieldset class="check-question', section)[1:]
    orders = [[int(v) for v in re.findall(r'value="(\d+)"', q)] for q in questions]
    return token.group(1), orders


def right_answers(module: Module, orders: list[list[int]], token: str) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {"draw": [token]}
    for question in module.questions.all():
        ids = {o.pk for o in question.options.all()}
        if any(set(order) == ids for order in orders):
            right = [str(o.pk) for o in question.options.all() if o.is_correct]
            data[f"question-{question.pk}"] = right
    return data


def test_options_are_shuffled_per_draw(client, learner, checked):
    client.force_login(learner)
    seen = {tuple(shown(client.get(page_url(checked)).content.decode())[1][1]) for _ in range(30)}
    # Three options have six orders; thirty draws showing just one would be a 6^-29 fluke.
    assert len(seen) > 1 and all(sorted(order) == sorted(next(iter(seen))) for order in seen)


def test_the_attempt_stores_the_order_shown_and_the_feedback_replays_it(client, learner, checked):
    client.force_login(learner)
    token, orders = shown(client.get(page_url(checked)).content.decode())
    data = right_answers(checked, orders, token)
    first = checked.questions.order_by("position").first()
    data[f"question-{first.pk}"] = [str(first.options.get(is_correct=False).pk)]  # fail it
    body = client.post(check_url(checked), data, **HTMX).content.decode()
    attempt = CheckAttempt.objects.get()
    assert [options for _, options in attempt.draw] == orders
    assert [question for question, _ in attempt.draw] == [
        q.pk for q in checked.questions.order_by("position")
    ]
    replay_token, replay_orders = shown(body)
    assert replay_orders == orders  # the feedback shows the options as they were answered
    # A retry from the feedback answers the same draw and is graded.
    retry = right_answers(checked, replay_orders, replay_token)
    assert client.post(check_url(checked), retry, **HTMX).status_code == 200
    assert CheckAttempt.objects.latest("id").passed


@pytest.fixture
def pooled(checked):
    make_check(
        checked,
        [
            ("Third?", [("Yes", True), ("No", False)]),
            ("Fourth?", [("Yes", True), ("No", False)]),
        ],
    )
    checked.check_draw_count = 2
    checked.save(update_fields=["check_draw_count"])
    return checked


def test_a_pool_draws_different_questions_and_grades_only_those(client, learner, pooled):
    client.force_login(learner)
    draws = set()
    for _ in range(20):
        html = client.get(page_url(pooled)).content.decode()
        assert "2 questions drawn from 4 for each attempt" in html
        token, orders = shown(html)
        assert len(orders) == 2
        draws.add(frozenset(o for order in orders for o in order))
    # Six possible pairs; twenty draws all alike would be a 6^-19 fluke.
    assert len(draws) > 1
    body = client.post(check_url(pooled), right_answers(pooled, orders, token), **HTMX)
    attempt = CheckAttempt.objects.get()
    assert attempt.question_count == 2 and attempt.passed and attempt.answers.count() == 2
    assert "2 of 2 correct" in body.content.decode()


def test_answering_a_question_that_was_not_drawn_is_refused(client, learner, pooled):
    client.force_login(learner)
    token, orders = shown(client.get(page_url(pooled)).content.decode())
    data = right_answers(pooled, orders, token)
    drawn = {o for order in orders for o in order}
    other = next(q for q in pooled.questions.all() if q.options.first().pk not in drawn)
    data[f"question-{other.pk}"] = [str(other.options.first().pk)]
    response = client.post(check_url(pooled), data, **HTMX)
    assert response.status_code == 400
    assert "was not among the questions drawn for this attempt" in response.content.decode()
    assert not CheckAttempt.objects.exists()


def test_a_pool_without_its_draw_is_refused(client, learner, pooled):
    client.force_login(learner)
    token, orders = shown(client.get(page_url(pooled)).content.decode())
    data = right_answers(pooled, orders, token)
    del data["draw"]
    response = client.post(check_url(pooled), data, **HTMX)
    assert response.status_code == 400 and "reload the page" in response.content.decode()


@pytest.mark.parametrize("tamper", ["altered", "other_learner"])
def test_a_tampered_or_borrowed_draw_is_refused(client, learner, checked, tamper):
    client.force_login(learner)
    token, orders = shown(client.get(page_url(checked)).content.decode())
    if tamper == "other_learner":
        client.force_login(UserFactory(username="otto"))
        message = "This form belongs to another knowledge check"
    else:
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        message = "The knowledge check&#x27;s form was altered"
    response = client.post(check_url(checked), right_answers(checked, orders, token), **HTMX)
    assert response.status_code == 400 and message in response.content.decode()
    assert not CheckAttempt.objects.exists()
