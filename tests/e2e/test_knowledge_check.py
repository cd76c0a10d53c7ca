"""A learner answers a knowledge check wrongly, reads why, answers rightly and moves on."""

from __future__ import annotations

import pytest
from django.utils import timezone

from courses.models import CheckAttempt, Module
from grading.models import ModuleProgress
from tests.e2e.conftest import SCREENSHOTS, sign_in
from tests.factories import complete_module

pytestmark = pytest.mark.django_db(transaction=True)


def test_learner_answers_a_check_wrongly_sees_why_then_passes_and_the_next_stage_opens(
    live_server, page, screenshot, shipped_course, demo_passwords, django_user_model
):
    password = demo_passwords["learner"]
    learner = django_user_model.objects.get(username="learner")
    stage_one = Module.objects.filter(stage__course=shipped_course, stage__position=1)
    module = stage_one.get(slug="optimisers-and-learning-rate")  # the last lesson of stage 1
    for other in stage_one.filter(required=True, kind="theory").exclude(pk=module.pk):
        complete_module(learner=learner, module=other)
    for lab_module in stage_one.filter(required=True, kind="lab"):  # graded runs: test_lab_run
        ModuleProgress.objects.create(
            learner=learner,
            module=lab_module,
            status="completed",
            best_score=90,
            completed_at=timezone.now(),
        )
    questions = list(module.questions.filter(retired_at__isnull=True).order_by("position"))

    sign_in(page, live_server, "learner", password)
    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/{module.slug}/")
    check = page.locator("#knowledge-check")
    check.scroll_into_view_if_needed()
    pool = len(questions)
    # The check draws 4 of its questions per attempt: answer the ones this page shows.
    questions = [q for q in questions if page.locator(f'[name$="-{q.pk}"]').count()]
    assert f"{len(questions)} questions drawn from {pool}" in check.inner_text()
    assert "This module completes when you pass" in page.locator("#progress-panel").inner_text()
    screenshot("20-knowledge-check-unanswered")
    check.screenshot(path=str(SCREENSHOTS / "20b-knowledge-check-unanswered-detail.png"))

    # Wrong: one wrong option for every question.
    for question in questions:
        if question.numeric_value is not None:
            page.fill(f'input[name="number-{question.pk}"]', str(question.numeric_value + 1000))
            continue
        wrong = question.options.filter(is_correct=False).order_by("position").first()
        page.check(f'input[name="question-{question.pk}"][value="{wrong.pk}"]')
    page.click("#check-submit")
    page.wait_for_selector("#knowledge-check .check-result.failed")
    assert "Not passed yet" in check.inner_text()
    assert check.locator(".check-question.wrong").count() == len(questions)
    first_choice = next(q for q in questions if q.numeric_value is None)
    first_wrong = first_choice.options.filter(is_correct=False).order_by("position").first()
    explanation = check.locator(".check-option.wrong .explanation").first
    assert explanation.is_visible()
    assert first_wrong.explanation_markdown.split()[0] in explanation.inner_text()
    panel = page.locator("#progress-panel")
    assert "✓ Completed" not in panel.inner_text()
    assert "Locked" in panel.locator('[data-stage="doing-it-well"]').inner_text()
    check.scroll_into_view_if_needed()
    screenshot("21-knowledge-check-wrong-with-explanations")
    check.screenshot(path=str(SCREENSHOTS / "21b-knowledge-check-wrong-detail.png"))

    # Right: exactly the correct options (clearing wrong checkboxes the learner had ticked).
    for question in questions:
        if question.numeric_value is not None:
            page.fill(f'input[name="number-{question.pk}"]', str(question.numeric_value))
        for option in question.options.all():
            selector = f'input[name="question-{question.pk}"][value="{option.pk}"]'
            if option.is_correct:
                page.check(selector)
            elif page.locator(selector).get_attribute("type") == "checkbox":
                page.uncheck(selector)
    page.click("#check-submit")
    page.wait_for_selector("#knowledge-check .check-result.passed")
    assert "Passed" in check.inner_text() and "100%" in check.inner_text()
    assert check.locator(".check-question.right").count() == len(questions)
    page.wait_for_selector('#progress-panel .stage.open[data-stage="doing-it-well"]')
    assert "✓ Completed" in panel.inner_text()
    screenshot("22-knowledge-check-passed-stage-2-open")
    check.screenshot(path=str(SCREENSHOTS / "22b-knowledge-check-passed-detail.png"))
    panel.screenshot(path=str(SCREENSHOTS / "22c-progress-panel-stage-2-open.png"))

    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/")
    assert "Locked" not in page.locator('.stage-map [data-stage="doing-it-well"] h3').inner_text()
    attempts = CheckAttempt.objects.filter(learner=learner, module=module).order_by("number")
    assert [(a.number, a.passed) for a in attempts] == [(1, False), (2, True)]
