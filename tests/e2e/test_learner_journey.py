from __future__ import annotations

import pytest
from django.utils import timezone

from courses.models import Module
from grading.models import ModuleProgress
from tests.e2e.conftest import sign_in
from tests.factories import complete_module

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_learner_completes_a_theory_module_and_sees_the_next_stage_unlock(
    live_server, page, screenshot, shipped_course, demo_passwords, django_user_model
):
    password = demo_passwords["learner"]
    learner = django_user_model.objects.get(username="learner")
    required = Module.objects.filter(stage__course=shipped_course, stage__position=1, required=True)
    *earlier, last = required.filter(kind="theory").order_by("position")
    for module in earlier:  # the journey starts one lesson before the end of stage 1
        complete_module(learner=learner, module=module)
    for lab_module in required.filter(
        kind="lab"
    ):  # passed earlier: graded runs are in test_lab_run
        ModuleProgress.objects.create(
            learner=learner,
            module=lab_module,
            status="completed",
            best_score=90,
            completed_at=timezone.now(),
        )

    sign_in(page, live_server, "learner", password)
    page.click(f"text={shipped_course.title}")
    stage_two = page.locator('.stage-map [data-stage="doing-it-well"]')
    assert "Locked" in stage_two.inner_text()
    screenshot("01-course-page-stage-2-locked")

    page.click(f".stage-map a:has-text('{last.title}')")
    page.wait_for_selector(".lesson-body")
    assert page.locator(".lesson-body math").count() + page.locator(".lesson-body h2").count() > 0
    screenshot("02-lesson")

    # A lesson with a knowledge check completes by passing it, not by a button.
    assert page.locator("#mark-complete").count() == 0
    for question in last.questions.filter(retired_at__isnull=True):
        if not page.locator(f'[name$="-{question.pk}"]').count():
            continue  # not drawn for this attempt
        if question.numeric_value is not None:
            page.fill(f'input[name="number-{question.pk}"]', str(question.numeric_value))
        for option in question.options.filter(is_correct=True):
            page.check(f'input[name="question-{question.pk}"][value="{option.pk}"]')
    page.click("#check-submit")
    # htmx swaps the check and, out of band, the progress panel in place; no reload.
    page.wait_for_selector('#progress-panel .stage.open[data-stage="doing-it-well"]')
    assert "✓ Completed" in page.locator("#progress-panel").inner_text()
    screenshot("03-module-complete-stage-2-open")

    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/")
    assert "Locked" not in page.locator('.stage-map [data-stage="doing-it-well"] h3').inner_text()
    screenshot("04-course-page-stage-2-open")
