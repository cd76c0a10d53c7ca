"""Authoring knowledge checks in the admin, and HR reading the attempts."""

from __future__ import annotations

from django.core import signing
from django.urls import reverse

from courses import draws
from courses.models import CheckQuestion, Module
from grading.services import check_attempt_submit
from tests.courses.test_admin import NO_TRANSLATIONS
from tests.factories import make_check


def option_forms(rows: list[tuple[str, bool, str]]) -> dict[str, object]:
    data: dict[str, object] = {
        "options-TOTAL_FORMS": len(rows),
        "options-INITIAL_FORMS": 0,
        "options-MIN_NUM_FORMS": 0,
        "options-MAX_NUM_FORMS": 1000,
        **NO_TRANSLATIONS,
    }
    for i, (text, correct, explanation) in enumerate(rows):
        data |= {
            f"options-{i}-position": i + 1,
            f"options-{i}-text_markdown": text,
            f"options-{i}-explanation_markdown": explanation,
        }
        if correct:
            data[f"options-{i}-is_correct"] = "on"
    return data


def test_instructor_adds_a_question_with_options_and_it_is_rendered_once(
    client, instructor, course
):
    client.force_login(instructor)
    module = Module.objects.get(slug="intro")
    data = {
        "module": module.pk,
        "position": 1,
        "key": "why",
        "prompt_markdown": "Why **$x$**?",
        **option_forms([("Because `x`", True, "Right: *x*."), ("No reason", False, "Wrong.")]),
    }
    response = client.post(reverse("admin:courses_checkquestion_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    question = CheckQuestion.objects.get(module=module, key="why")
    assert "<strong>" in question.prompt_html and "<math" in question.prompt_html
    assert len(question.fingerprint) == 64
    first = question.options.order_by("position").first()
    assert (
        first.text_html == "Because <code>x</code>"
        and first.explanation_html == "<p>Right: <em>x</em>.</p>"
    )
    page = client.get(reverse("admin:courses_module_change", args=[module.pk])).content.decode()
    assert "knowledge-check question" in page.lower() and "2 (1 correct)" in page
    assert f"/admin/courses/checkquestion/add/?module={module.pk}" in page


def test_a_question_without_a_correct_option_or_with_broken_math_is_a_form_error(
    client, instructor, course
):
    client.force_login(instructor)
    module = Module.objects.get(slug="intro")
    data = {
        "module": module.pk,
        "position": 1,
        "key": "why",
        "prompt_markdown": "Why?",
        **option_forms([("A", False, "No."), ("B", False, "$\\frac{a}{b$")]),
    }
    page = client.post(reverse("admin:courses_checkquestion_add"), data).content.decode()
    assert "Mark at least one option as correct." in page
    assert "Line 1: Unbalanced braces in math" in page
    assert not CheckQuestion.objects.exists()


def test_hr_reads_attempts_with_answers_but_cannot_change_them(client, hr, learner, course):
    module = Module.objects.get(slug="intro")
    (question,) = make_check(module, [("Ready?", [("Yes", True), ("No", False)])])
    outcome = check_attempt_submit(
        learner=learner,
        module=module,
        answers={question.pk: [question.options.get(is_correct=False).pk]},
    )
    client.force_login(hr)
    page = client.get(reverse("admin:courses_checkattempt_changelist")).content.decode()
    assert "lee" in page and "intro" in page
    url = reverse("admin:courses_checkattempt_change", args=[outcome.attempt.pk])
    detail = client.get(url).content.decode()
    assert "Ready?" in detail and "No" in detail and 'name="_save"' not in detail
    assert client.post(url, {"score": 100}).status_code == 403


def test_a_question_cannot_be_added_to_a_lab(client, instructor, course):
    client.force_login(instructor)
    lab = Module.objects.get(slug="lab")
    data = {
        "module": lab.pk,
        "position": 1,
        "key": "why",
        "prompt_markdown": "Why?",
        **option_forms([("A", True, "Yes."), ("B", False, "No.")]),
    }
    page = client.post(reverse("admin:courses_checkquestion_add"), data).content.decode()
    assert "A lab has no knowledge check" in page
    assert not CheckQuestion.objects.exists()


def test_instructor_adds_a_numeric_question_with_no_options(client, instructor, course):
    client.force_login(instructor)
    module = Module.objects.get(slug="intro")
    data = {
        "module": module.pk,
        "position": 1,
        "key": "entropy",
        "prompt_markdown": "Loss of a collapsed run?",
        "numeric_value": "0.89",
        "numeric_tolerance": "0.01",
        "explanation_markdown": "The label *entropy*.",
        **option_forms([]),
    }
    response = client.post(reverse("admin:courses_checkquestion_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    question = CheckQuestion.objects.get(module=module, key="entropy")
    assert question.explanation_html == "<p>The label <em>entropy</em>.</p>"
    assert len(question.fingerprint) == 64 and not question.options.exists()


def test_a_numeric_question_with_options_or_without_explanation_is_a_form_error(
    client, instructor, course
):
    client.force_login(instructor)
    module = Module.objects.get(slug="intro")
    data = {
        "module": module.pk,
        "position": 1,
        "key": "entropy",
        "prompt_markdown": "Loss?",
        "numeric_value": "0.89",
        "numeric_tolerance": "-1",
        "explanation_markdown": "",
        **option_forms([("A", True, "a"), ("B", False, "b")]),
    }
    page = client.post(reverse("admin:courses_checkquestion_add"), data).content.decode()
    assert "The tolerance must be 0 or more." in page
    assert "A numeric question needs an explanation." in page
    data |= {"numeric_tolerance": "0.01", "explanation_markdown": "Entropy."}
    page = client.post(reverse("admin:courses_checkquestion_add"), data).content.decode()
    assert "A numeric question has no options: delete them, or clear its value." in page
    assert not CheckQuestion.objects.exists()


def test_hr_reads_an_attempt_with_its_options_in_the_order_shown(client, hr, learner, checked):
    first, second = checked.questions.order_by("position")
    shown = [[first.pk, [o.pk for o in first.options.order_by("-position")]], [second.pk, []]]
    shown[1][1] = [o.pk for o in second.options.order_by("-position")]
    token = signing.dumps({"u": learner.pk, "m": checked.pk, "d": shown}, salt=draws.SALT)
    outcome = check_attempt_submit(
        learner=learner,
        module=checked,
        answers={q.pk: [q.options.filter(is_correct=False).first().pk] for q in (first, second)},
        draw_token=token,
    )
    client.force_login(hr)
    url = reverse("admin:courses_checkattempt_change", args=[outcome.attempt.pk])
    detail = client.get(url).content.decode()
    assert "As shown to the learner" in detail
    # The author put "Confident wrong answers" first; this learner saw the options reversed.
    assert detail.index("<li>Slow training</li>") < detail.index("<li>Confident wrong answers</li>")
    assert detail.index("<li>The learning rate</li>") < detail.index("<li>Weights</li>")
