"""The interface in Simplified Chinese, as a learner and HR see it in the browser.

The learner switches with the header's switcher (the choice is saved on the account);
HR's browser simply asks for Chinese (Accept-Language). Course content itself (titles,
lessons, labels) may still be English: only the interface is checked, against the
catalogue's own English messages. Screenshots: tests/e2e/screenshots/zh-*.png.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from courses.models import LanguagePreference, Module
from grading.reports.demo import demo_organisation_create
from labs.models import Lab, Submission
from tests.e2e.conftest import SCREENSHOTS, sign_in
from tests.grading.test_services_grading import make_grade
from tests.pofile import parse

pytestmark = pytest.mark.django_db(transaction=True)

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
# Course content and learner code, which this branch does not translate.
CONTENT = (
    "script, .lesson-body, .question-prompt, .option-text, .explanation, pre, code, textarea, "
    ".CodeMirror, h1, .lead, .breadcrumbs, .stage-map h3, .modules a, .pager, "
    ".lab-dataset a, .per-class td:first-child, table.confusion, .top-confusions strong, "
    "#learner-table td, #department-chart, #timeline-chart, .muted strong, select, option"
)


def interface_phrases() -> list[str]:
    """The catalogue's English messages of two words or more without placeholders or
    markup: any of them on a Chinese page is an untranslated piece of interface."""
    phrases = []
    for entry in parse(CATALOGUE):
        text = entry.msgid
        if not text or "%" in text or "<" in text or "&" in text or len(text.split()) < 2:
            continue
        phrases.append(text.rstrip(".:…"))
    return phrases


def interface_text(page) -> str:
    """The page's visible text without course content (see CONTENT)."""
    return page.evaluate(
        """selector => {
            const copy = document.body.cloneNode(true);
            copy.querySelectorAll(selector).forEach(node => node.remove());
            copy.querySelectorAll('[hidden], details:not([open]) > :not(summary)')
                .forEach(node => node.remove());
            return copy.innerText;
        }""",
        CONTENT,
    )


def assert_chinese(page, *expected: str) -> None:
    assert page.get_attribute("html", "lang") == "zh-hans"
    text = interface_text(page)
    english = [phrase for phrase in interface_phrases() if phrase in text]
    assert not english, f"English interface text on {page.url}: {english}"
    for words in expected:
        assert words in page.inner_text("body"), f"{words!r} missing on {page.url}"


def graded_run(learner, lab: Lab) -> Submission:
    """A finished, graded run of the lab as the worker leaves it (its metrics made up:
    training is other tests' subject, the wording of its result is this one's)."""
    labels = list(lab.dataset.labels)
    n = len(labels)
    matrix = [[40 if i == j else 3 for j in range(n)] for i in range(n)]
    metrics = {
        "accuracy": 0.87,
        "macro_f1": 0.84,
        "labels": labels,
        "per_class": [
            {"label": label, "precision": 0.85, "recall": 0.83 + i / 100, "f1": 0.84, "support": 46}
            for i, label in enumerate(labels)
        ],
        "confusion_matrix": matrix,
    }
    now = timezone.now()
    submission = Submission.objects.create(
        learner=learner,
        lab=lab,
        code=lab.reference_solution,
        status=Submission.Status.GRADED,
        counts_as_attempt=True,
        step=120,
        total_steps=120,
        epoch=3,
        loss_curve=[[s, 1.1 - s / 150] for s in range(0, 121, 10)],
        dev_curve=[
            {
                "epoch": e,
                "train_loss": 1.0 - e / 5,
                "dev_loss": 0.9 - e / 6,
                "dev_accuracy": 0.7 + e / 20,
                "dev_macro_f1": 0.65 + e / 20,
            }
            for e in (1, 2, 3)
        ],
        result={"wall_s": 212, "best_epoch": 3, "final_dev_accuracy": 0.85},
        samples_per_second=41.0,
        device="cpu",
        started_at=now - datetime.timedelta(minutes=4),
        finished_at=now,
    )
    make_grade(submission, lab, metrics)
    return submission


def test_the_learner_and_hr_see_the_interface_in_simplified_chinese(
    live_server, page, browser, screenshot, shipped_course, demo_passwords
):
    learner = get_user_model().objects.get(username="learner")
    lab = Lab.objects.select_related("module", "dataset").get(module__slug="lab-first-fine-tune")
    graded_run(learner, lab)
    lesson = Module.objects.filter(course=shipped_course, kind="theory").order_by(
        "stage__position", "position"
    )[0]

    sign_in(page, live_server, "learner", demo_passwords["learner"])
    assert page.get_attribute("html", "lang") == "en-gb"  # the browser asks for English
    page.select_option("#language-select", "zh-hans")
    page.click(".language-switcher button")
    page.wait_for_selector('html[lang="zh-hans"]')
    assert LanguagePreference.objects.get(user=learner).language == "zh-hans"

    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/")
    assert_chinese(page, "阶段", "我的学习", "退出登录")
    screenshot("zh-01-course")

    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/{lesson.slug}/")
    assert_chinese(page, "你的进度", "知识测验")
    screenshot("zh-02-lesson")

    page.goto(f"{live_server.url}/courses/{shipped_course.slug}/{lab.module.slug}/")
    page.wait_for_selector("#result")
    assert_chinese(page, "训练并评分", "已评分", "混淆矩阵", "宏平均 F1", "验证集准确率", "预检查")
    assert page.inner_text("#precheck-run") == "预检查"
    screenshot("zh-03-lab-result")

    # HR's browser asks for Chinese; nothing is saved on HR's account.
    demo_organisation_create(course_slugs=[shipped_course.slug])
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    try:
        hr_page = context.new_page()
        hr_page.set_default_timeout(15_000)
        sign_in(hr_page, live_server, "hr", demo_passwords["hr"])
        hr_page.goto(f"{live_server.url}/reports/")
        hr_page.wait_for_selector("#department-chart")
        assert_chinese(hr_page, "完成情况报表", "部门", "完成率", "下载 CSV", "导入员工…")
        SCREENSHOTS.mkdir(exist_ok=True)
        hr_page.screenshot(path=str(SCREENSHOTS / "zh-04-hr-report.png"), full_page=True)
    finally:
        context.close()
    assert not LanguagePreference.objects.filter(user__username="hr").exists()
