"""The knowledge check on the module page: answered in place with htmx."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.urls import reverse

from courses.models import CheckAttempt, Module
from grading.models import ModuleProgress
from grading.services import module_mark_complete
from tests.factories import make_check

HTMX = {"HTTP_HX_REQUEST": "true"}

# Module page with a check, returning learner, rendered (not from the page cache):
# session, user, the page cache's version lookup, permissions (2), course, module,
# progress (3: stages, modules, rows), questions, options, enrollment, latest attempt:
# the same however many questions the check has.
MODULE_PAGE_WITH_CHECK_QUERIES = 14


def url(module: Module, name: str = "courses:module-check") -> str:
    return reverse(name, args=[module.course.slug, module.slug])


def form_data(module: Module, *, right: bool) -> dict[str, list[str]]:
    data = {}
    for question in module.questions.all():
        chosen = [str(o.pk) for o in question.options.all() if o.is_correct == right]
        data[f"question-{question.pk}"] = chosen if right else chosen[:1]
    return data


def test_module_page_shows_the_check_instead_of_the_complete_button(client, learner, checked):
    client.force_login(learner)
    page = client.get(url(checked, "courses:module")).content.decode()
    assert 'id="knowledge-check"' in page and "pass mark 100%" in page
    assert page.count('type="radio"') == 2 and page.count('type="checkbox"') == 3
    assert "Choose every option that applies." in page
    assert 'id="mark-complete"' not in page
    assert "completes when you pass its" in page
    assert "Because" not in page  # no explanation before answering


def test_a_wrong_answer_shows_the_chosen_options_explanation_and_the_module_stays_open(
    client, learner, checked
):
    client.force_login(learner)
    response = client.post(url(checked), form_data(checked, right=False), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="knowledge-check"') and "<html" not in body
    assert "Not passed yet" in body and "0 of 2 correct (0%; pass mark 100%), attempt 1" in body
    assert "Because slow training is wrong." in body
    assert "Because confident wrong answers is right." not in body  # not given away
    assert '<section id="progress-panel"' in body and 'hx-swap-oob="true"' in body
    assert "✓ Completed" not in body
    assert ModuleProgress.objects.get(learner=learner, module=checked).status == "in_progress"


def test_a_right_answer_completes_the_module_and_the_panel_shows_the_next_stage_open(
    client, learner, checked, course
):
    client.force_login(learner)
    module_mark_complete(learner=learner, module=Module.objects.get(course=course, slug="intro"))
    client.post(url(checked), form_data(checked, right=False), **HTMX)
    body = client.post(url(checked), form_data(checked, right=True), **HTMX).content.decode()
    assert "Passed:" in body and "2 of 2 correct (100%; pass mark 100%), attempt 2" in body
    assert "Because slow training is wrong." in body  # after a pass every option explains
    assert "✓ Completed" in body and 'class="stage open" data-stage="advanced"' in body
    assert CheckAttempt.objects.filter(learner=learner, module=checked).count() == 2


def test_after_a_pass_the_check_offers_no_resubmission_of_the_same_answers(
    client, learner, checked
):
    client.force_login(learner)
    failed = client.post(url(checked), form_data(checked, right=False), **HTMX).content.decode()
    assert 'id="check-submit"' in failed and "Submit answers again" in failed
    passed = client.post(url(checked), form_data(checked, right=True), **HTMX).content.decode()
    assert 'id="check-submit"' not in passed and "Submit answers again" not in passed
    assert "You passed this check; your pass is kept." in passed
    page = client.get(url(checked, "courses:module")).content.decode()
    # A fresh draw, offered as optional practice (the next test), never "again".
    assert "Submit answers again" not in page


def test_the_swap_scrolls_the_result_banner_into_view(client, learner, checked):
    client.force_login(learner)
    body = client.post(url(checked), form_data(checked, right=False), **HTMX).content.decode()
    # The banner is the first thing in the swapped section, and the swap shows its top.
    assert 'hx-swap="outerHTML show:#knowledge-check:top"' in body
    section = body[body.index('<section id="knowledge-check"') :]
    assert section.index('class="check-result') < section.index("<form")


def test_without_htmx_the_answer_is_the_whole_page_with_feedback(client, learner, checked):
    client.force_login(learner)
    response = client.post(url(checked), form_data(checked, right=True))
    page = response.content.decode()
    assert response.status_code == 200 and "<html" in page and "Passed:" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"question-abc": ["1"]}, "Answers must name a question and its options by number."),
        ({"question-1": ["x"]}, "Answers must name a question and its options by number."),
        ({"question-1": ["²"]}, "Answers must name a question and its options by number."),
        (
            {"question-" + "9" * 30: ["1"]},
            "Answers must name a question and its options by number.",
        ),
        ({}, "None of the 2 questions has an answer yet: choose an answer for each one"),
    ],
)
def test_malformed_answers_get_a_clear_400_and_record_nothing(
    client, learner, checked, data, message
):
    client.force_login(learner)
    response = client.post(url(checked), data, **HTMX)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not CheckAttempt.objects.exists()


def test_answering_a_locked_module_is_a_403_with_what_is_missing(client, learner, course):
    deeper = Module.objects.get(course=course, slug="deeper")
    (question,) = make_check(deeper, [("Ready?", [("Yes", True), ("No", False)])])
    client.force_login(learner)
    data = {f"question-{question.pk}": [str(question.options.first().pk)]}
    response = client.post(url(deeper), data, **HTMX)
    assert response.status_code == 403
    assert "This module is locked. Complete first: “Intro”, “Loss”" in response.content.decode()
    assert not CheckAttempt.objects.exists()


def test_without_htmx_a_refusal_redirects_to_the_module_with_the_message(client, learner, course):
    deeper = Module.objects.get(course=course, slug="deeper")
    make_check(deeper, [("Ready?", [("Yes", True), ("No", False)])])
    client.force_login(learner)
    response = client.post(url(deeper), {}, follow=True)
    assert response.redirect_chain[-1][0] == url(deeper, "courses:module")
    assert "This module is locked. Complete first" in response.content.decode()


def test_the_complete_button_endpoint_refuses_a_module_with_a_check(client, learner, checked):
    client.force_login(learner)
    response = client.post(url(checked, "courses:module-complete"), **HTMX)
    assert response.status_code == 403
    assert "completed by passing the check" in response.content.decode()
    assert not ModuleProgress.objects.filter(learner=learner, status="completed").exists()


def test_answering_requires_post_and_a_visible_module(client, learner, checked):
    client.force_login(learner)
    assert client.get(url(checked)).status_code == 405
    missing = reverse("courses:module-check", args=[checked.course.slug, "nope"])
    assert client.post(missing, {}).status_code == 404


def test_module_page_with_a_check_query_count_does_not_grow_with_the_check(
    client, learner, checked, django_assert_num_queries
):
    client.force_login(learner)
    client.get(url(checked, "courses:module"))  # first visit records the start, sets a cookie
    with django_assert_num_queries(MODULE_PAGE_WITH_CHECK_QUERIES):
        client.get(url(checked, "courses:module"))
    make_check(
        checked, [(f"Extra {i}?", [("A", True), ("B", False), ("C", False)]) for i in range(8)]
    )
    client.post(url(checked), form_data(checked, right=False), **HTMX)
    with django_assert_num_queries(MODULE_PAGE_WITH_CHECK_QUERIES):
        page = client.get(url(checked, "courses:module")).content.decode()
    assert "Your last attempt" in page


def test_over_http_unknown_options_and_another_modules_question_get_clear_400s(
    client, learner, checked, course
):
    client.force_login(learner)
    data = form_data(checked, right=True)
    first = checked.questions.order_by("position").first()
    unknown = {**data, f"question-{first.pk}": ["999999"]}
    response = client.post(url(checked), unknown, **HTMX)
    assert response.status_code == 400
    assert "Option #999999 is not an option of question 1." in response.content.decode()
    (foreign,) = make_check(
        Module.objects.get(course=course, slug="intro"), [("Other?", [("A", True), ("B", False)])]
    )
    mixed = {**data, f"question-{foreign.pk}": [str(foreign.options.first().pk)]}
    response = client.post(url(checked), mixed, **HTMX)
    assert response.status_code == 400
    assert "is not part of this module&#x27;s knowledge check." in response.content.decode()
    assert not CheckAttempt.objects.exists()


def test_after_a_pass_a_retry_is_offered_as_optional_only_while_retries_are_allowed(
    client, learner, checked
):
    client.force_login(learner)
    passed = client.post(url(checked), form_data(checked, right=True), **HTMX).content.decode()
    assert (
        ">Try again (optional)</a> with a fresh draw: your pass stays whatever you score." in passed
    )
    page = client.get(url(checked, "courses:module")).content.decode()
    assert ">Try again (optional)</button>" in page and "Submit answers again" not in page
    checked.check_max_attempts = 1
    checked.save()
    caches["pages"].clear()  # the cap is the author's change, not one the page key follows
    page = client.get(url(checked, "courses:module")).content.decode()
    assert "Try again" not in page and 'id="check-submit"' not in page
