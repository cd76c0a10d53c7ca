"""Learner pages in the learner's language, English where a text has no translation.

The language is Django's active one: here chosen by the browser (Accept-Language, or the
`django_language` cookie a language switcher sets) through LocaleMiddleware. Progress
and answers are the English rows', so a check passed in Chinese is passed.
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from courses.models import (
    CheckOptionTranslation,
    CheckQuestionTranslation,
    CourseTranslation,
    ModuleTranslation,
    StageTranslation,
)
from courses.rendering import render_markdown
from courses.services import course_content_changed, enrollment_create
from grading.models import ModuleProgress
from tests.web.test_knowledge_check_views import form_data

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en-gb"}
SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"


@pytest.fixture(autouse=True)
def _locale(settings):
    """The locale middleware, where the settings do not have it yet (the i18n work adds it)."""
    locale = "django.middleware.locale.LocaleMiddleware"
    if locale not in settings.MIDDLEWARE:
        middleware = list(settings.MIDDLEWARE)
        middleware.insert(middleware.index(SESSIONS) + 1, locale)
        settings.MIDDLEWARE = middleware


def translate(module, *, title: str, body: str) -> None:
    ModuleTranslation.objects.create(
        module=module,
        language="zh-hans",
        title=title,
        body_markdown=body,
        body_html=render_markdown(body).html,
    )


@pytest.fixture
def chinese(checked):
    """The demo course with its check module ('loss') translated, its check included."""
    course = checked.course
    CourseTranslation.objects.create(course=course, language="zh-hans", title="演示课程")
    StageTranslation.objects.create(stage=checked.stage, language="zh-hans", title="基础")
    translate(checked, title="损失函数", body="交叉熵是 $-\\log p$。")
    for question in checked.questions.all():
        CheckQuestionTranslation.objects.create(
            question=question,
            language="zh-hans",
            prompt_markdown=f"问题 {question.key}",
            prompt_html=f"<p>问题 {question.key}</p>",
        )
        for option in question.options.all():
            CheckOptionTranslation.objects.create(
                option=option,
                language="zh-hans",
                text_markdown=f"选项{option.pk}",
                text_html=f"选项{option.pk}",
                explanation_markdown="因为如此。",
                explanation_html="<p>因为如此。</p>",
            )
    course_content_changed(course=course)
    return checked


def lesson(module) -> str:
    return reverse("courses:module", args=[module.course.slug, module.slug])


def test_a_lesson_in_zh_hans_shows_the_chinese_title_body_and_check(client, learner, chinese):
    client.force_login(learner)
    page = client.get(lesson(chinese), **ZH).content.decode()
    assert "损失函数" in page and "交叉熵是" in page and "<math" in page
    assert "问题 q1" in page and "选项" in page
    assert "What does cross-entropy punish most?" not in page
    assert "演示课程" in page


def test_the_same_lesson_in_english_shows_the_english(client, learner, chinese):
    client.force_login(learner)
    page = client.get(lesson(chinese), **EN).content.decode()
    assert "What does cross-entropy punish most?" in page and "Confident wrong answers" in page
    assert "损失函数" not in page and "问题" not in page


def test_the_language_cookie_chooses_the_language_too(client, learner, chinese):
    client.force_login(learner)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    assert "损失函数" in client.get(lesson(chinese)).content.decode()


def test_a_module_without_a_translation_falls_back_to_english(client, learner, chinese):
    client.force_login(learner)
    intro = chinese.course.modules.get(slug="intro")
    page = client.get(lesson(intro), **ZH).content.decode()
    assert "<h1>Intro</h1>" in page or "Intro" in page
    # Its place in the stage map is translated where a translation exists.
    assert "损失函数" in page and "基础" in page


def test_answering_in_chinese_passes_the_same_check_and_progress_is_shared(
    client, learner, chinese
):
    client.force_login(learner)
    check = reverse("courses:module-check", args=[chinese.course.slug, chinese.slug])
    answered = client.post(check, form_data(chinese, right=True), HTTP_HX_REQUEST="true", **ZH)
    assert answered.status_code == 200
    assert "因为如此" in answered.content.decode()  # the feedback in Chinese
    progress = ModuleProgress.objects.get(learner=learner, module=chinese)
    assert progress.status == ModuleProgress.Status.COMPLETED
    attempt = chinese.check_attempts.get()
    assert attempt.passed and attempt.score == 100
    # The record keeps the English texts it was graded on.
    assert next(a.prompt_text for a in attempt.answers.all()).startswith("What does")
    page = client.get(lesson(chinese), **EN).content.decode()
    assert "Your last attempt" in page or "passed" in page.lower()


def test_the_course_page_and_my_learning_are_translated(client, learner, chinese):
    enrollment_create(learner=learner, course=chinese.course)
    client.force_login(learner)
    course_page = client.get(reverse("courses:course", args=[chinese.course.slug]), **ZH)
    assert "演示课程" in course_page.content.decode() and "损失函数" in course_page.content.decode()
    mine = client.get(reverse("courses:my-learning"), **ZH).content.decode()
    assert "演示课程" in mine
    english = client.get(reverse("courses:my-learning"), **EN).content.decode()
    assert "Demo course" in english and "演示课程" not in english


def test_the_transcript_is_in_the_readers_language(client, learner, chinese):
    enrollment_create(learner=learner, course=chinese.course)
    client.force_login(learner)
    url = reverse("reports:transcript", args=[learner.pk])
    page = client.get(url, **ZH).content.decode()
    assert "演示课程" in page and "损失函数" in page


def test_the_page_cache_keeps_each_language_apart(client, learner, chinese):
    enrollment_create(learner=learner, course=chinese.course)
    client.force_login(learner)
    client.get(reverse("courses:catalog"))  # a browser holds a CSRF cookie
    url = reverse("courses:course", args=[chinese.course.slug])
    assert "演示课程" in client.get(url, **ZH).content.decode()
    assert "演示课程" in client.get(url, **ZH).content.decode()  # from the cache
    english = client.get(url, **EN)
    assert "Demo course" in english.content.decode() and "演示课程" not in english.content.decode()


def test_translated_pages_look_translations_up_in_queries_that_do_not_grow(
    client, learner, chinese, django_assert_max_num_queries
):
    from tests.factories import ModuleFactory
    from tests.web.test_course_views import COURSE_PAGE_QUERIES

    enrollment_create(learner=learner, course=chinese.course)
    client.force_login(learner)
    client.get(reverse("courses:catalog"))
    url = reverse("courses:course", args=[chinese.course.slug])
    # Course, stage and module translations: three look-ups on top of the English page.
    with django_assert_max_num_queries(COURSE_PAGE_QUERIES + 3):
        client.get(url, **ZH)
    stage = chinese.stage
    for i in range(15):
        module = ModuleFactory(course=chinese.course, stage=stage, slug=f"m{i}", position=20 + i)
        translate(module, title=f"模块{i}", body="正文")
    course_content_changed(course=chinese.course)
    with django_assert_max_num_queries(COURSE_PAGE_QUERIES + 3):
        page = client.get(url, **ZH).content.decode()
    assert "模块14" in page


def test_an_authors_preview_shows_the_translations_draft_in_its_language(
    client, instructor, chinese
):
    from django.utils import timezone

    ModuleTranslation.objects.filter(module=chinese).update(
        draft_markdown="草稿", draft_html="<p>草稿正文</p>", draft_saved_at=timezone.now()
    )
    client.force_login(instructor)
    preview = reverse("courses:module-preview", args=[chinese.course.slug, chinese.slug])
    assert "草稿正文" in client.get(preview, **ZH).content.decode()
    assert "草稿正文" not in client.get(lesson(chinese), **ZH).content.decode()


def test_a_shipped_lesson_reads_in_chinese_with_its_check(client, learner, shipped_course):
    client.force_login(learner)
    module = shipped_course.modules.get(slug="tokenisation")
    page = client.get(lesson(module), **ZH).content.decode()
    assert "分词、填充与截断" in page and "为什么用子词？" in page
    assert "在训练任何东西之前" in page  # a question of its check
    english = client.get(lesson(module), **EN).content.decode()
    assert "Tokenisation, padding and truncation" in english and "为什么用子词" not in english
