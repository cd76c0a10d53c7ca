"""Translations of a course folder: read, checked against the English, stored, exported.

A translation file carries texts only; one that does not match its English module is
refused on its own, naming the file, line and question, and the English still imports.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from courses.authoring.export import course_export
from courses.authoring.parse import content_languages, parse_course_folder
from courses.models import (
    CheckOptionTranslation,
    CheckQuestionTranslation,
    CourseTranslation,
    Module,
    ModuleTranslation,
    StageTranslation,
)
from labs.services.authoring import course_folder_import
from tests.conftest import SHIPPED_COURSE

COURSE_YAML = """\
slug: tiny
title: Tiny course
summary: For tests.
stages:
  - slug: one
    title: One
    summary: The first stage.
"""

COURSE_ZH = """\
language: zh-hans
title: 小课程
summary: 用于测试。
stages:
  - slug: one
    title: 第一阶段
    summary: 第一个阶段。
"""

MODULE = """\
---
slug: a
title: Cross-entropy
kind: theory
minutes: 5
summary: The loss.
check:
  pass_mark: 100
  questions:
    - id: punish
      prompt: What does cross-entropy punish most?
      options:
        - text: Confident wrong answers
          correct: true
          explanation: Their log-probability is very negative.
        - text: Slow training
          explanation: Speed is not in the loss.
    - id: share
      prompt: What share of 8 is 2?
      answer:
        value: 0.25
      explanation: 2 / 8 = 0.25.
---
Cross-entropy is $-\\log p$.
"""

MODULE_ZH = """\
---
slug: a
language: zh-hans
title: 交叉熵
summary: 损失函数。
check:
  questions:
    - id: punish
      prompt: 交叉熵对什么惩罚最重？
      options:
        - text: 自信的错误答案
          explanation: 它们的对数概率非常低。
        - text: 训练速度慢
          explanation: 损失函数里没有速度。
    - id: share
      prompt: 2 占 8 的多少？
      explanation: 2 / 8 = 0.25。
---
交叉熵是 $-\\log p$。
"""


def plain_module(slug: str) -> str:
    return f"---\nslug: {slug}\ntitle: Module {slug}\nkind: theory\nminutes: 5\n---\nHello.\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "tiny"
    (root / "one").mkdir(parents=True)
    (root / "course.yaml").write_text(COURSE_YAML)
    (root / "course.zh-hans.yaml").write_text(COURSE_ZH)
    (root / "one" / "01-a.md").write_text(MODULE)
    (root / "one" / "01-a.zh-hans.md").write_text(MODULE_ZH)
    (root / "one" / "02-b.md").write_text(plain_module("b"))
    return root


def test_zh_hans_is_a_content_language_and_english_is_not():
    assert "zh-hans" in content_languages()
    assert not any(code.startswith("en") for code in content_languages())


def test_a_folder_imports_with_both_languages(db, folder):
    report = course_folder_import(path=folder)
    course = report.course
    assert report.translations_refused == []
    assert "translation zh-hans of module a" in report.created
    assert course.title == "Tiny course"  # the English rows stay English
    assert CourseTranslation.objects.get(course=course).title == "小课程"
    assert StageTranslation.objects.get(stage__slug="one").title == "第一阶段"
    module = Module.objects.get(slug="a")
    translation = ModuleTranslation.objects.get(module=module, language="zh-hans")
    assert (translation.title, translation.summary) == ("交叉熵", "损失函数。")
    assert "<math" in translation.body_html and "交叉熵是" in translation.body_html
    punish, share = module.questions.order_by("position")
    assert punish.translations.get().prompt_html == "<p>交叉熵对什么惩罚最重？</p>"
    assert share.translations.get().explanation_markdown == "2 / 8 = 0.25。\n"
    texts = CheckOptionTranslation.objects.filter(option__question=punish).order_by(
        "option__position"
    )
    assert [t.text_html for t in texts] == ["自信的错误答案", "训练速度慢"]
    # Which option is right stays the English row's alone.
    assert [o.is_correct for o in punish.options.order_by("position")] == [True, False]
    assert not Module.objects.filter(slug__contains="zh").exists()

    again = course_folder_import(path=folder)
    assert (again.created, again.updated) == ([], [])


BROKEN = [
    (
        "a non-text key",
        lambda t: t.replace(
            "          explanation: 它们", "          correct: false\n          explanation: 它们"
        ),
        "01-a.zh-hans.md:12: 'correct' is not translated: it comes from the English file",
    ),
    (
        "an option missing",
        lambda t: t.replace(
            "        - text: 训练速度慢\n          explanation: 损失函数里没有速度。\n", ""
        ),
        "01-a.zh-hans.md:10: question 1 ('punish') has 1 option(s), the English 2",
    ),
    (
        "the questions reordered",
        lambda t: t.replace("id: punish", "id: tmp").replace("id: share", "id: punish"),
        "01-a.zh-hans.md:8: question 1 has id 'tmp', but the English question 1 is 'punish'",
    ),
    (
        "another module's slug",
        lambda t: t.replace("slug: a\n", "slug: b\n"),
        "01-a.zh-hans.md:2: unknown slug 'b': the English module beside it",
    ),
    (
        "a language the site does not offer",
        lambda t: t.replace("language: zh-hans", "language: xx"),
        "'language' is 'xx', but the file name says 'zh-hans'",
    ),
    (
        "a numeric question given options",
        lambda t: t.replace(
            "      explanation: 2 / 8 = 0.25。",
            "      options:\n        - text: 一\n          explanation: 一",
        ),
        "question 2 ('share') is a numeric question: translate its 'prompt' and 'explanation'",
    ),
    (
        "no check though the English has one",
        lambda t: t.split("check:")[0] + "---\n正文。\n",
        "the English module has a knowledge check of 2 question(s)",
    ),
    (
        "a misspelt key",
        lambda t: t.replace("title: 交叉熵", "titel: 交叉熵"),
        "unknown key(s): titel",
    ),
    (
        "Markdown that does not render",
        lambda t: t.replace("交叉熵是 $-\\log p$。", "$\\frac{a}{b$"),
        "01-a.zh-hans.md",
    ),
]


@pytest.mark.parametrize(("case", "edit", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_bad_translation_is_refused_by_name_and_the_english_still_imports(
    db, folder, case, edit, message
):
    path = folder / "one" / "01-a.zh-hans.md"
    path.write_text(edit(path.read_text()))
    report = course_folder_import(path=folder)
    assert len(report.translations_refused) == 1, case
    assert message in report.translations_refused[0]
    assert "one/01-a.zh-hans.md" in report.translations_refused[0]
    assert any("translation refused" in line and message in line for line in report.lines())
    module = Module.objects.get(slug="a")
    assert module.title == "Cross-entropy" and module.questions.count() == 2
    assert not ModuleTranslation.objects.exists()
    assert not CheckQuestionTranslation.objects.exists()
    # The rest of the folder's translations are unharmed.
    assert CourseTranslation.objects.get().title == "小课程"


def test_a_translation_with_no_english_module_is_refused(db, folder):
    (folder / "one" / "03-c.zh-hans.md").write_text(MODULE_ZH)
    report = course_folder_import(path=folder)
    [problem] = report.translations_refused
    assert problem == (
        f"{folder}/one/03-c.zh-hans.md: a translation with no English module beside it (03-c.md)"
    )
    assert ModuleTranslation.objects.get().module.slug == "a"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("slug: one", "slug: two"), "unknown stage slug 'two'"),
        (lambda t: t + "published: false\n", "'published' is not translated"),
        (lambda t: t.replace("language: zh-hans", "language: zh-hant"), "file name says"),
    ],
)
def test_a_bad_course_translation_is_refused_and_the_modules_keep_theirs(db, folder, edit, message):
    path = folder / "course.zh-hans.yaml"
    path.write_text(edit(path.read_text()))
    report = course_folder_import(path=folder)
    assert [p for p in report.translations_refused if message in p and "course.zh-hans" in p]
    assert not CourseTranslation.objects.exists() and not StageTranslation.objects.exists()
    assert ModuleTranslation.objects.get().title == "交叉熵"


def test_an_unknown_language_in_the_file_name_is_refused(db, folder):
    (folder / "one" / "01-a.xx.md").write_text(MODULE_ZH.replace("zh-hans", "xx"))
    report = course_folder_import(path=folder)
    assert len(report.translations_refused) == 1
    assert "'xx' is not one of the site's languages" in report.translations_refused[0]


def test_a_translation_removed_from_the_folder_is_removed_on_reimport(db, folder):
    course_folder_import(path=folder)
    (folder / "one" / "01-a.zh-hans.md").unlink()
    report = course_folder_import(path=folder)
    assert "module a: translation(s) removed" in report.updated
    assert not ModuleTranslation.objects.exists()
    assert not CheckOptionTranslation.objects.exists()


def test_a_changed_english_question_keeps_its_translation_in_step(db, folder, learner):
    """An answered question that changes is retired and replaced: the new row gets the
    translation, the retired one keeps the text it was answered in."""
    from grading.services import check_attempt_submit
    from tests.factories import check_answers

    course_folder_import(path=folder)
    module = Module.objects.get(slug="a")
    answers = check_answers(module)
    numbers = {q.pk: 0.25 for q in module.questions.filter(numeric_value__isnull=False)}
    check_attempt_submit(learner=learner, module=module, answers=answers, numbers=numbers)
    english = folder / "one" / "01-a.md"
    english.write_text(english.read_text().replace("Slow training", "Fast training"))
    course_folder_import(path=folder)
    live = module.questions.get(key="punish", retired_at__isnull=True)
    assert live.translations.get().prompt_markdown == "交叉熵对什么惩罚最重？\n"
    assert CheckOptionTranslation.objects.filter(option__question=live).count() == 2


def test_import_then_export_round_trips_the_translations(db, folder, tmp_path):
    course = course_folder_import(path=folder).course
    files = course_export(course=course, dest=tmp_path / "export", lab_sections={})
    names = {str(p.relative_to(tmp_path / "export")) for p in files}
    assert {"course.zh-hans.yaml", "one/01-a.zh-hans.md"} <= names
    assert "one/02-b.zh-hans.md" not in names
    exported = parse_course_folder(tmp_path / "export")
    original = parse_course_folder(folder)
    assert exported.translation_problems == []
    assert exported.translations["zh-hans"].title == original.translations["zh-hans"].title
    assert exported.translations["zh-hans"].stages == original.translations["zh-hans"].stages

    def texts(spec):
        return [
            (vars(t) | {"source_path": None}) for m in spec.modules for t in m.translations.values()
        ]

    assert texts(exported) == texts(original)
    report = course_folder_import(path=tmp_path / "export")
    assert (report.created, report.updated, report.translations_refused) == ([], [], [])
    # An exported file is written the way the exporter writes: a second export is identical.
    again = course_export(course=course, dest=tmp_path / "again", lab_sections={})
    for first, second in zip(files, again, strict=True):
        assert first.read_bytes() == second.read_bytes()


def test_every_translation_in_the_shipped_course_imports_cleanly(db):
    spec = parse_course_folder(SHIPPED_COURSE)
    assert [str(p) for p in spec.translation_problems] == []
    files = sorted(SHIPPED_COURSE.glob("*/*.zh-hans.md"))
    assert files, "the shipped course has Chinese modules"
    translated = {t.source_path for m in spec.modules for t in m.translations.values()}
    assert {str(p.relative_to(SHIPPED_COURSE)) for p in files} == translated
    assert "zh-hans" in spec.translations
    report = course_folder_import(path=SHIPPED_COURSE)
    assert report.translations_refused == []
    assert ModuleTranslation.objects.filter(language="zh-hans").count() == len(files)


def test_the_shipped_foundations_stage_is_translated_whole():
    spec = parse_course_folder(SHIPPED_COURSE)
    foundations = next(s for s in spec.stages if s.slug == "foundations")
    assert [m.slug for m in foundations.modules if "zh-hans" not in m.translations] == []


# --- The admin ---------------------------------------------------------------


def _module_form(module: Module, **translation: str) -> dict[str, object]:
    from tests.courses.test_admin import NO_QUESTIONS

    data: dict[str, object] = {
        "course": module.course_id,
        "stage": module.stage_id,
        "position": module.position,
        "slug": module.slug,
        "title": module.title,
        "kind": module.kind,
        "required": "on",
        "estimated_minutes": module.estimated_minutes,
        "summary": module.summary,
        "body_markdown": module.body_markdown,
        "check_pass_mark": 100,
        "check_cooldown_minutes": 0,
        **NO_QUESTIONS,
    }
    existing = module.translations.first()
    data |= {
        "translations-TOTAL_FORMS": 1,
        "translations-INITIAL_FORMS": 1 if existing else 0,
        "translations-0-id": existing.pk if existing else "",
        "translations-0-module": module.pk,
        "translations-0-language": "zh-hans",
        **{f"translations-0-{name}": value for name, value in translation.items()},
    }
    return data


def test_an_instructor_translates_a_module_in_the_admin_with_drafts(client, instructor, course):
    client.force_login(instructor)
    module = course.modules.get(slug="intro")
    url = reverse("admin:courses_module_change", args=[module.pk])
    form = _module_form(module, title="导论", summary="", body_markdown="第一版 $x$。")
    assert client.post(url, form).status_code == 302
    translation = module.translations.get()
    assert "第一版" in translation.body_html and "<math" in translation.body_html

    form = _module_form(module, title="导论", summary="", body_markdown="第二版。")
    response = client.post(url, {**form, "_save_draft": "1"})
    assert response.status_code == 302
    translation.refresh_from_db()
    assert "第一版" in translation.body_html  # learners still read the published translation
    assert "第二版" in translation.draft_html
    assert "第二版" in client.get(url).content.decode()  # the translator goes on with the draft

    assert client.post(url, form).status_code == 302  # "Save" publishes
    translation.refresh_from_db()
    assert "第二版" in translation.body_html and translation.draft_saved_at is None


def test_the_admin_refuses_a_translation_into_a_language_the_site_lacks(client, instructor, course):
    client.force_login(instructor)
    module = course.modules.get(slug="intro")
    url = reverse("admin:courses_module_change", args=[module.pk])
    form = _module_form(module, title="Intro", summary="", body_markdown="x")
    form["translations-0-language"] = "en-gb"
    page = client.post(url, form).content.decode()
    assert "is not one of the site&#x27;s languages other than English" in page
    assert not module.translations.exists()


def test_an_instructor_translates_a_question_and_an_option_and_they_are_rendered(
    client, instructor, course
):
    from tests.courses.test_knowledge_check_admin import option_forms

    client.force_login(instructor)
    module = Module.objects.get(slug="intro")
    data = {
        "module": module.pk,
        "position": 1,
        "key": "why",
        "prompt_markdown": "Why **$x$**?",
        **option_forms([("Because `x`", True, "Right."), ("No reason", False, "Wrong.")]),
        "translations-TOTAL_FORMS": 1,
        "translations-0-language": "zh-hans",
        "translations-0-prompt_markdown": "为什么是 **$x$**？",
        "translations-0-explanation_markdown": "",
    }
    response = client.post(reverse("admin:courses_checkquestion_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    question = module.questions.get(key="why")
    translation = question.translations.get()
    assert "<strong>" in translation.prompt_html and "<math" in translation.prompt_html

    option = question.options.order_by("position").first()
    add = reverse("admin:courses_checkoptiontranslation_add")
    posted = {
        "option": option.pk,
        "language": "zh-hans",
        "text_markdown": "因为 `x`",
        "explanation_markdown": "对。",
    }
    assert client.post(add, posted).status_code == 302
    assert CheckOptionTranslation.objects.get(option=option).text_html == "因为 <code>x</code>"
