"""At 390 x 844 (a phone) every page fits the screen: wide things scroll inside their own box."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from courses.models import Module
from grading.models import ModuleProgress
from grading.reports.demo import demo_organisation_create
from labs.models import Lab, Submission
from tests.e2e.conftest import sign_in
from tests.grading.test_services_grading import make_grade

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}

# The widest elements that stick out of the viewport, for a failure message that says where.
OVERFLOW = """() => {
  const width = window.innerWidth;
  const wide = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > width + 1)
    .filter(e => !e.closest('[data-scrolls]') && getComputedStyle(e.parentElement).overflowX === 'visible')
    .slice(0, 8)
    .map(e => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}px`);
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width, wide};
}"""


def assert_fits_the_phone(page) -> None:
    measured = page.evaluate(OVERFLOW)
    assert measured["scrollWidth"] <= measured["innerWidth"], (page.url, measured)


def test_course_page_lesson_finished_lab_hr_report_and_transcript_fit_a_phone(
    live_server, page, screenshot, shipped_course, demo_passwords
):
    learner = get_user_model().objects.get(username="learner")
    lab = Lab.objects.get(module__slug="lab-first-fine-tune")
    # The lab is open once stage 1's lessons are done; its finished run has a grade with a
    # confusion matrix and metric tables, the widest things a lab page shows.
    for module in Module.objects.filter(stage=lab.module.stage, kind="theory"):
        ModuleProgress.objects.create(
            learner=learner, module=module, status="completed", completed_at=timezone.now()
        )
    submission = Submission.objects.create(
        learner=learner,
        lab=lab,
        code=lab.reference_solution,
        status="graded",
        step=40,
        total_steps=40,
        loss_curve=[[i, 1.1 - i / 50] for i in range(1, 41)],
        started_at=timezone.now(),
        finished_at=timezone.now(),
        log_tail="epoch 1 " + "x" * 300,
    )
    labels = ["negative", "neutral", "positive"]
    make_grade(
        submission,
        lab,
        {
            "accuracy": 0.8,
            "macro_f1": 0.78,
            "labels": labels,
            "per_class": [
                {"label": label, "precision": 0.8, "recall": 0.8, "f1": 0.8, "support": 100}
                for label in labels
            ],
            "confusion_matrix": [[80, 10, 10], [10, 80, 10], [10, 10, 80]],
        },
    )
    page.set_viewport_size(PHONE)

    sign_in(page, live_server, "learner", demo_passwords["learner"])
    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/")
    assert_fits_the_phone(page)
    screenshot("phone-01-course-page")

    # Stage 1's longest lesson: the most code blocks, tables and formulas to fit.
    lessons = Module.objects.filter(stage=lab.module.stage, kind="theory")
    lesson = max(lessons, key=lambda m: len(m.body_html))
    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/{lesson.slug}/")
    page.wait_for_selector(".lesson-body")
    assert_fits_the_phone(page)
    # The sidebar comes after the lesson on a phone, not beside it.
    lesson_box = page.locator("article.lesson").bounding_box()
    sidebar_box = page.locator("aside.sidebar").bounding_box()
    assert sidebar_box["y"] >= lesson_box["y"] + lesson_box["height"]
    screenshot("phone-02-lesson")

    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/{lab.module.slug}/")
    page.wait_for_selector("#run-status.status-graded")
    page.wait_for_selector(".CodeMirror")
    assert_fits_the_phone(page)
    screenshot("phone-03-lab-finished-run")

    page.click("button:has-text('Sign out')")
    demo_organisation_create(course_slugs=[shipped_course.slug])
    sign_in(page, live_server, "hr", demo_passwords["hr"])
    page.goto(f"{live_server.url}/reports/")
    page.wait_for_selector("#learner-table")
    assert_fits_the_phone(page)
    screenshot("phone-04-hr-report")

    # The transcript of the learner whose run is above: courses, modules, scores, audit.
    page.goto(f"{live_server.url}/reports/learners/{learner.pk}/")
    page.wait_for_selector(".transcript")
    assert_fits_the_phone(page)
    screenshot("phone-05-transcript")
