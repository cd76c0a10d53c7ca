"""Numeric questions: a typed value, right within the author's tolerance."""

from __future__ import annotations

import pytest
from django.urls import reverse

from courses.models import CheckAnswer, CheckAttempt, CheckQuestion, Module
from courses.services import CheckAnswerError, question_render
from grading.services import check_attempt_submit

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def numeric(course) -> Module:
    module = course.modules.get(slug="loss")
    question = CheckQuestion.objects.create(
        module=module,
        key="entropy",
        position=1,
        prompt_markdown="Loss of a collapsed run on 65/20/15 labels?",
        numeric_value=0.89,
        numeric_tolerance=0.01,
        explanation_markdown="The label entropy, $-\\sum p \\ln p$.",
    )
    question_render(question=question)
    return module


@pytest.mark.parametrize(
    ("given", "right"),
    [(0.89, True), (0.88, True), (0.90, True), (0.8799, False), (0.9001, False), (-0.89, False)],
)
def test_a_number_is_right_within_the_tolerance_and_wrong_outside(learner, numeric, given, right):
    question = numeric.questions.get()
    outcome = check_attempt_submit(
        learner=learner, module=numeric, answers={}, numbers={question.pk: given}
    )
    assert outcome.attempt.passed is right
    answer = CheckAnswer.objects.get()
    assert answer.number_given == given and answer.is_correct is right
    assert answer.selected_texts == [f"{given:g}"]


def test_a_numeric_question_refuses_options_and_a_choice_question_refuses_numbers(learner, checked):
    question = checked.questions.order_by("position").first()
    with pytest.raises(CheckAnswerError, match=r"^Question 1 takes options, not a number\.$"):
        check_attempt_submit(
            learner=learner, module=checked, answers={}, numbers={question.pk: 1.0}
        )
    assert not CheckAttempt.objects.exists()


def post(client, module: Module, value: str):
    question = module.questions.get()
    url = reverse("courses:module-check", args=[module.course.slug, module.slug])
    return client.post(url, {f"number-{question.pk}": [value]}, **HTMX)


@pytest.mark.parametrize(("typed", "right"), [("0,89", True), (" 0.895 ", True), ("0.8", False)])
def test_the_page_takes_a_typed_number_and_explains_it_only_after_a_pass(
    client, learner, numeric, typed, right
):
    client.force_login(learner)
    body = post(client, numeric, typed).content.decode()
    assert 'name="number-' in body and 'inputmode="decimal"' in body
    assert ("Passed:" in body) is right
    assert ("The label entropy" in body) is right  # the working is the answer: not on a fail


@pytest.mark.parametrize(
    ("typed", "message"),
    [("about one", "is not a number; type digits"), ("", "The question has no answer yet")],
)
def test_a_typed_answer_that_is_not_a_number_is_refused(client, learner, numeric, typed, message):
    client.force_login(learner)
    response = post(client, numeric, typed)
    assert response.status_code == 400 and message in response.content.decode()
    assert not CheckAttempt.objects.exists()
