"""At 1280 x 800 (a laptop) the learner, HR and admin pages fit the window; screenshots of
each are saved for a person to look at (issue 17). The sidebar is checked at 1280 x 900."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from courses.models import CheckQuestion, Module
from grading.models import Grade, ModuleProgress
from grading.reports.demo import demo_organisation_create
from labs.models import Lab, Submission
from tests.e2e.conftest import SCREENSHOTS, sign_in
from tests.e2e.test_phone_layout import OVERFLOW
from tests.grading.test_services_grading import make_grade

pytestmark = pytest.mark.django_db(transaction=True)

LAPTOP = {"width": 1280, "height": 800}
LABELS = ["negative", "neutral", "positive"]
METRICS = {
    "accuracy": 0.7,
    "macro_f1": 0.62,
    "labels": LABELS,
    "per_class": [
        {"label": label, "precision": 0.7, "recall": recall, "f1": 0.6, "support": 1200}
        for label, recall in zip(LABELS, (0.2, 0.9, 0.6), strict=True)
    ],
    "confusion_matrix": [[240, 800, 160], [50, 1080, 70], [90, 390, 720]],
}


def assert_fits(page) -> None:
    measured = page.evaluate(OVERFLOW)
    assert measured["scrollWidth"] <= measured["innerWidth"], (page.url, measured)


def graded(lab: Lab, user, *, score: float, passed: bool, **fields) -> Submission:
    run = Submission.objects.create(
        learner=user,
        lab=lab,
        code=lab.starter_code,
        status="graded",
        step=34,
        total_steps=34,
        loss_curve=[[i, 1.1 - i / 45] for i in range(1, 35)],
        dev_curve=[{"epoch": 1, "train_loss": 0.7, "dev_loss": 0.66, "dev_accuracy": 0.709}],
        started_at=timezone.now(),
        finished_at=timezone.now(),
        **fields,
    )
    grade = make_grade(run, lab, METRICS)
    Grade.objects.filter(pk=grade.pk).update(
        score=score,
        passed=passed,
        floors=[
            {
                "floor": "class_recall",
                "label": "negative",
                "required": 0.3,
                "actual": 0.2,
                "met": False,
            }
        ],
    )
    return run


def test_learner_hr_and_admin_pages_fit_a_laptop(
    live_server, page, screenshot, shipped_course, demo_passwords
):
    user_model = get_user_model()
    learner = user_model.objects.get(username="learner")
    instructor = user_model.objects.get(username="instructor")
    lab = Lab.objects.get(module__slug="lab-first-fine-tune")
    for module in Module.objects.filter(stage=lab.module.stage, kind="theory"):
        ModuleProgress.objects.create(
            learner=learner, module=module, status="completed", completed_at=timezone.now()
        )
    graded(lab, learner, score=54.414931801866466, passed=False)
    Lab.objects.filter(pk=lab.pk).update(reference_score=61.27, starter_score=12.4)
    for role, ablation, passed in (
        ("reference", "", True),
        ("starter", "", False),
        ("ablation", "no-preprocess", False),
    ):
        graded(
            lab, instructor, score=54.414931801866466, passed=passed,
            validation_of=role, ablation=ablation,
        )  # fmt: skip
    demo_organisation_create(course_slugs=[shipped_course.slug])

    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, live_server, "learner", demo_passwords["learner"])
    lesson = Module.objects.filter(course=shipped_course, kind="theory").order_by("pk").first()
    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/{lesson.slug}/")
    # The sticky sidebar is never taller than the window: it scrolls in its own box.
    sidebar = page.evaluate(
        "() => { const s = document.querySelector('aside.sidebar');"
        " return {h: s.getBoundingClientRect().height, overflow: getComputedStyle(s).overflowY}; }"
    )
    assert sidebar["h"] <= 900 and sidebar["overflow"] == "auto", sidebar

    page.set_viewport_size(LAPTOP)
    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/")
    assert_fits(page)
    screenshot("laptop-01-course-page")

    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/{lesson.slug}/")
    assert_fits(page)
    # Submitting nothing: the message is in view, above the questions, not below the fold.
    page.click("#check-submit")
    alert = page.locator("#knowledge-check [role=alert]")
    alert.wait_for()
    assert "has an answer yet" in alert.inner_text()
    assert alert.is_visible() and page.evaluate(
        "() => { const r = document.querySelector('#knowledge-check [role=alert]')"
        ".getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; }"
    )
    screenshot("laptop-02-lesson")

    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/{lab.module.slug}/")
    page.wait_for_selector("#run-status.status-graded")
    page.wait_for_selector(".CodeMirror")
    assert_fits(page)
    assert page.locator(".next-steps").is_visible()
    # The score and its "/100" stay on one line beside the verdict.
    score = page.locator(".score").bounding_box()
    assert score["height"] < 90, score
    assert page.locator("[data-load=starter]").is_visible()
    screenshot("laptop-03-lab-finished-run")
    # The editor and the result, each on its own, for a closer look than the full page.
    page.locator("#editor").screenshot(path=str(SCREENSHOTS / "laptop-03a-lab-editor.png"))
    page.locator("#run-panel").screenshot(path=str(SCREENSHOTS / "laptop-03b-lab-result.png"))
    # "Reset to starter" swaps the editor's text in place.
    page.evaluate("() => window.academyEditor.setValue('while True:\\n    pass\\n')")
    page.click("[data-load=starter]")
    assert page.evaluate("() => window.academyEditor.getValue()") == lab.starter_code

    page.click("button:has-text('Sign out')")
    sign_in(page, live_server, "hr", demo_passwords["hr"])
    page.goto(f"{live_server.url}/reports/")
    page.wait_for_selector("#learner-table")
    assert_fits(page)
    screenshot("laptop-04-hr-report")
    # Chart labels are drawn at 12 px or more once the SVG is scaled into its card.
    smallest = page.evaluate(
        "() => Math.min(...[...document.querySelectorAll('.report-charts svg text')].map("
        "t => parseFloat(getComputedStyle(t).fontSize) * t.ownerSVGElement.getScreenCTM().a))"
    )
    assert smallest >= 12, smallest
    # The table scrolls inside its own box; the page itself does not.
    wrap = page.evaluate(
        "() => { const w = document.querySelector('.report-table-wrap');"
        " return {client: w.clientWidth, scroll: w.scrollWidth}; }"
    )
    assert wrap["client"] <= 1280, wrap

    page.click("button:has-text('Sign out')")
    sign_in(page, live_server, "instructor", demo_passwords["instructor"])
    page.goto(f"{live_server.url}{reverse('admin:labs_lab_changelist')}")
    assert_fits(page)
    assert "54.41493" not in page.content()
    screenshot("laptop-05-admin-labs")
    page.goto(f"{live_server.url}{reverse('admin:labs_submission_changelist')}")
    assert_fits(page)
    assert page.locator("td.field-verdict", has_text="passes as it should").count() == 1
    screenshot("laptop-06-admin-validation-runs")
    run = Submission.objects.filter(validation_of="reference").get()
    page.goto(f"{live_server.url}{reverse('admin:labs_submission_change', args=[run.pk])}")
    assert_fits(page)
    screenshot("laptop-07-admin-validation-run")

    # Authoring pages: a module (its wide body editor) and a question fit too.
    module = Module.objects.filter(course=shipped_course, kind="theory").order_by("pk").first()
    page.goto(f"{live_server.url}{reverse('admin:courses_module_change', args=[module.pk])}")
    assert_fits(page)
    body = page.locator("textarea.body-editor").bounding_box()
    assert body["width"] >= 600, body  # still wide enough to write in
    screenshot("laptop-08-admin-module")
    question = CheckQuestion.objects.filter(module__course=shipped_course).first()
    page.goto(
        f"{live_server.url}{reverse('admin:courses_checkquestion_change', args=[question.pk])}"
    )
    assert_fits(page)
    screenshot("laptop-09-admin-question")
