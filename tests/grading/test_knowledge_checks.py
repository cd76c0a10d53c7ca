"""Answering a knowledge check: every attempt recorded, completion only on a pass."""

from __future__ import annotations

import pytest
from django.utils import timezone

from courses.models import CheckAnswer, CheckAttempt, Enrollment, Module
from courses.services import CheckAnswerError
from grading.models import ModuleProgress
from grading.selectors import course_progress
from grading.services import (
    CheckNotAnswerable,
    ModuleLocked,
    NotSelfCompletable,
    check_attempt_submit,
    module_mark_complete,
)
from tests.factories import make_check


def answers(module: Module, *, right: bool = True) -> dict[int, list[int]]:
    out = {}
    for question in module.questions.all():
        options = list(question.options.all())
        out[question.pk] = [o.pk for o in options if o.is_correct == right][
            : 1 if not right else None
        ]
    return out


def test_a_module_with_a_check_cannot_be_marked_complete_by_hand(learner, checked):
    with pytest.raises(NotSelfCompletable, match="completed by passing the check"):
        module_mark_complete(learner=learner, module=checked)
    assert not ModuleProgress.objects.filter(learner=learner, status="completed").exists()


def test_a_failed_attempt_is_recorded_and_does_not_complete_the_module(learner, checked):
    outcome = check_attempt_submit(
        learner=learner, module=checked, answers=answers(checked, right=False)
    )
    attempt = outcome.attempt
    assert (attempt.number, attempt.correct_count, attempt.score, attempt.passed) == (
        1,
        0,
        0,
        False,
    )
    progress = ModuleProgress.objects.get(learner=learner, module=checked)
    assert progress.status == "in_progress" and progress.best_score == 0
    assert Enrollment.objects.filter(learner=learner, course=checked.course).exists()


def test_a_pass_completes_the_module_and_opens_the_next_stage(learner, checked, course):
    module_mark_complete(learner=learner, module=Module.objects.get(course=course, slug="intro"))
    check_attempt_submit(learner=learner, module=checked, answers=answers(checked, right=False))
    assert not course_progress(learner=learner, course=course).stages[1].is_open
    outcome = check_attempt_submit(learner=learner, module=checked, answers=answers(checked))
    assert outcome.attempt.number == 2 and outcome.attempt.score == 100 and outcome.attempt.passed
    progress = ModuleProgress.objects.get(learner=learner, module=checked)
    assert progress.status == "completed" and progress.completed_at and progress.best_score == 100
    assert course_progress(learner=learner, course=course).stages[1].is_open


def test_every_attempt_and_answer_is_kept_and_a_later_failure_never_revokes_a_pass(
    learner, checked
):
    check_attempt_submit(learner=learner, module=checked, answers=answers(checked))
    completed_at = ModuleProgress.objects.get(learner=learner, module=checked).completed_at
    check_attempt_submit(learner=learner, module=checked, answers=answers(checked, right=False))
    attempts = list(CheckAttempt.objects.filter(learner=learner).order_by("number"))
    assert [(a.number, a.score, a.passed) for a in attempts] == [(1, 100, True), (2, 0, False)]
    first = CheckAnswer.objects.filter(attempt=attempts[0]).order_by("question__position")
    assert [a.is_correct for a in first] == [True, True]
    assert first[1].selected_texts == ["Weights", "Biases"]
    assert first[0].prompt_text.startswith("What does cross-entropy")
    progress = ModuleProgress.objects.get(learner=learner, module=checked)
    assert progress.status == "completed" and progress.completed_at == completed_at
    assert progress.best_score == 100


def test_a_pass_mark_below_100_passes_with_one_wrong_question(learner, checked):
    checked.check_pass_mark = 50
    checked.save()
    mixed = answers(checked)
    first = checked.questions.order_by("position").first()
    mixed[first.pk] = [first.options.get(is_correct=False).pk]
    outcome = check_attempt_submit(learner=learner, module=checked, answers=mixed)
    assert outcome.attempt.score == 50 and outcome.attempt.passed


def test_answering_a_locked_modules_check_is_refused_and_records_nothing(learner, course):
    deeper = Module.objects.get(course=course, slug="deeper")
    make_check(deeper, [("Ready?", [("Yes", True), ("No", False)])])
    with pytest.raises(
        ModuleLocked, match=r"This module is locked\. Complete first: “Intro”, “Loss”"
    ):
        check_attempt_submit(learner=learner, module=deeper, answers=answers(deeper))
    assert not CheckAttempt.objects.exists()


def test_submitting_with_nothing_answered_says_none_were_answered(learner, checked):
    with pytest.raises(CheckAnswerError, match=r"^None of the 2 questions has an answer yet"):
        check_attempt_submit(learner=learner, module=checked, answers={})
    empty = {q.pk: [] for q in checked.questions.all()}
    with pytest.raises(CheckAnswerError, match="None of the 2 questions"):
        check_attempt_submit(learner=learner, module=checked, answers=empty)
    assert not CheckAttempt.objects.exists()


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("missing", "Answer every question before submitting: question 2 has no answer."),
        ("empty", "Answer every question before submitting: question 1 has no answer."),
        ("unknown_option", "Option #999999 is not an option of question 1."),
        ("other_questions_option", "is not an option of question 1."),
        ("two_for_one", "Question 1 takes one answer; you sent 2."),
        ("foreign_question", "is not part of this module's knowledge check."),
        ("duplicate", "Question 2 lists the same option twice."),
    ],
)
def test_answers_that_cannot_be_graded_are_refused_with_a_clear_message(
    learner, checked, course, tamper, message
):
    data = answers(checked)
    first, second = checked.questions.order_by("position")
    if tamper == "missing":
        del data[second.pk]
    elif tamper == "empty":
        data[first.pk] = []
    elif tamper == "unknown_option":
        data[first.pk] = [999999]
    elif tamper == "other_questions_option":
        data[first.pk] = [second.options.first().pk]
    elif tamper == "two_for_one":
        data[first.pk] = list(first.options.values_list("pk", flat=True))
    elif tamper == "foreign_question":
        other = Module.objects.get(course=course, slug="intro")
        (foreign,) = make_check(other, [("Other?", [("A", True), ("B", False)])])
        data[foreign.pk] = [foreign.options.first().pk]
    elif tamper == "duplicate":
        data[second.pk] = data[second.pk] + data[second.pk][:1]
    with pytest.raises(CheckAnswerError) as info:
        check_attempt_submit(learner=learner, module=checked, answers=data)
    assert message in str(info.value)
    assert not CheckAttempt.objects.exists() and not CheckAnswer.objects.exists()


def test_answers_to_a_retired_question_ask_the_learner_to_reload(learner, checked):
    data = answers(checked)
    first = checked.questions.order_by("position").first()
    first.__class__.objects.filter(pk=first.pk).update(retired_at=timezone.now())
    with pytest.raises(CheckAnswerError, match="has changed since you opened the page"):
        check_attempt_submit(learner=learner, module=checked, answers=data)


def test_a_module_without_a_check_or_a_lab_cannot_be_answered(learner, course):
    with pytest.raises(CheckAnswerError, match=r"This module has no knowledge check\."):
        check_attempt_submit(learner=learner, module=Module.objects.get(slug="intro"), answers={})
    module_mark_complete(learner=learner, module=Module.objects.get(slug="intro"))
    module_mark_complete(learner=learner, module=Module.objects.get(slug="loss"))
    with pytest.raises(CheckNotAnswerable, match=r"A code lab has no knowledge check\."):
        check_attempt_submit(learner=learner, module=Module.objects.get(slug="lab"), answers={})
