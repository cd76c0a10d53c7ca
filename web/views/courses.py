"""Learner pages: catalog, my learning, course stage map, module pages (a lab's included)."""

from __future__ import annotations

import math
import re
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from academy.http import SignedInRequest
from academy.refusals import Refusal
from courses.models import Module
from courses.selectors import course_get_visible, module_get_for_authoring, module_get_visible
from courses.services import CheckAnswerError, CheckOutcome, enrollment_create
from grading.services import check_attempt_submit, module_mark_complete
from web.pagecache import cacheable_for_learner, cached_learner_page
from web.selectors import (
    catalog_rows,
    course_page_context,
    lab_of,
    lab_page_context,
    module_page_context,
    module_preview_context,
    my_learning_rows,
)
from web.services import module_open


@login_required
def catalog(request: SignedInRequest) -> HttpResponse:
    return render(request, "courses/catalog.html", {"rows": catalog_rows(user=request.user)})


@login_required
def my_learning(request: SignedInRequest) -> HttpResponse:
    context = {"rows": my_learning_rows(learner=request.user), "today": timezone.localdate()}
    return render(request, "courses/my_learning.html", context)


@login_required
@cached_learner_page
def course_detail(request: SignedInRequest, slug: str) -> HttpResponse:
    course = course_get_visible(user=request.user, slug=slug)
    context = course_page_context(learner=request.user, course=course)
    return cacheable_for_learner(render(request, "courses/course_detail.html", context))


@login_required
@require_POST
def course_enroll(request: SignedInRequest, slug: str) -> HttpResponse:
    course = course_get_visible(user=request.user, slug=slug)
    enrollment_create(learner=request.user, course=course)
    messages.success(request, _("You are enrolled in “%(title)s”.") % {"title": course.title})
    return redirect("courses:course", slug=course.slug)


@login_required
@vary_on_headers("HX-Request")
@cached_learner_page
def module_detail(request: SignedInRequest, course_slug: str, slug: str) -> HttpResponse:
    """A module's page: the lesson or case study, or the lab (editor, runs); for htmx, only
    the progress panel. Opening an open module records the learner's start."""
    module = module_get_visible(user=request.user, course_slug=course_slug, slug=slug)
    progress = module_open(learner=request.user, module=module)
    lab = lab_of(module=module)
    if lab is not None and not request.htmx:
        context = lab_page_context(
            learner=request.user,
            module=module,
            lab=lab,
            progress=progress,
            load=request.GET.get("load"),
        )
        # A lab's page follows its runs and is never cached.
        return render(request, "labs/lab_detail.html", context)
    context = module_page_context(learner=request.user, module=module, progress=progress)
    if request.htmx:
        return render(request, "courses/module_detail.html#progress-panel", context)
    response = render(request, "courses/module_detail.html", context)
    # A page that says when the next attempt opens goes stale by the clock, not by a
    # change the cache key sees: it is rendered afresh until the check opens again.
    if module.kind == Module.Kind.LAB or context["check_retry_refusal"]:
        return response
    # A cached page keeps its draw until the learner's progress changes, which every
    # attempt does: so each attempt is shown a fresh draw, and a reload shows the same one.
    return cacheable_for_learner(response)


@login_required
def module_preview(request: SignedInRequest, course_slug: str, slug: str) -> HttpResponse:
    """An author's preview: the learner page's own template, with the unpublished draft."""
    module = module_get_for_authoring(user=request.user, course_slug=course_slug, slug=slug)
    context = module_preview_context(user=request.user, module=module)
    template = "labs/lab_detail.html" if "lab" in context else "courses/module_detail.html"
    response = render(request, template, context)
    response["Cache-Control"] = "private, no-store"  # a draft is never cached
    return response


@login_required
@require_POST
@vary_on_headers("HX-Request")
def module_complete(request: SignedInRequest, course_slug: str, slug: str) -> HttpResponse:
    module = module_get_visible(user=request.user, course_slug=course_slug, slug=slug)
    refusal = None
    try:
        module_mark_complete(learner=request.user, module=module)
    except Refusal as exc:
        refusal = exc
    if request.htmx:
        context = {
            **module_page_context(learner=request.user, module=module),
            "error": refusal.message if refusal else None,
            "just_completed": refusal is None,
        }
        return render(
            request,
            "courses/module_detail.html#progress-panel",
            context,
            status=refusal.status if refusal else 200,
        )
    if refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, f"“{module.title}” marked complete.")
    return redirect("courses:module", course_slug=course_slug, slug=slug)


def _is_id(text: str) -> bool:
    # ASCII digits only, and short enough for a database integer (no overflow, no "²").
    return text.isascii() and text.isdigit() and len(text) <= 18


def _numbers_from_post(data: QueryDict) -> dict[int, float]:
    """`number-<id>` fields of numeric questions; an empty field is no answer."""
    numbers: dict[int, float] = {}
    for key in data:
        if not key.startswith("number-"):
            continue
        question_id, text = key.removeprefix("number-"), data.get(key, "").strip()
        if not _is_id(question_id):
            raise CheckAnswerError(_("Answers must name a question by number."))
        if not text:
            continue
        # People write 22,742 or 0,89; a comma is a thousands separator only before 3 digits.
        cleaned = text.replace(" ", "").replace("\u202f", "")
        if re.fullmatch(r"-?[1-9]\d{0,2}(,\d{3})+(\.\d+)?", cleaned):
            cleaned = cleaned.replace(",", "")
        else:
            cleaned = cleaned.replace(",", ".")
        try:
            value = float(cleaned)
        except ValueError:
            raise CheckAnswerError(
                f"“{text[:40]}” is not a number; type digits, e.g. 0.25."
            ) from None
        if not math.isfinite(value):
            raise CheckAnswerError(f"“{text[:40]}” is not a finite number.")
        numbers[int(question_id)] = value
    return numbers


def _answers_from_post(data: QueryDict) -> dict[int, list[int]]:
    """`question-<id>` fields, each with one (radio) or more (checkbox) option ids."""
    answers: dict[int, list[int]] = {}
    for key in data:
        if not key.startswith("question-"):
            continue
        question_id, values = key.removeprefix("question-"), data.getlist(key)
        if not _is_id(question_id) or not all(_is_id(v) for v in values):
            raise CheckAnswerError(_("Answers must name a question and its options by number."))
        answers[int(question_id)] = [int(v) for v in values]
    return answers


@login_required
@require_POST
@vary_on_headers("HX-Request")
def module_check(request: SignedInRequest, course_slug: str, slug: str) -> HttpResponse:
    """Answer a module's knowledge check; the answer is the check with its feedback."""
    module = module_get_visible(user=request.user, course_slug=course_slug, slug=slug)
    outcome: CheckOutcome | None = None
    refusal = None
    try:
        answers = _answers_from_post(request.POST)
        outcome = check_attempt_submit(
            learner=request.user,
            module=module,
            answers=answers,
            draw_token=request.POST.get("draw") or None,
            numbers=_numbers_from_post(request.POST),
        )
    except Refusal as exc:
        refusal = exc
    if refusal and not request.htmx:
        messages.error(request, refusal.message)
        return redirect("courses:module", course_slug=course_slug, slug=slug)
    context: dict[str, Any] = {
        **module_page_context(learner=request.user, module=module, outcome=outcome),
        "check_error": refusal.message if refusal else None,
        "just_completed": bool(outcome and outcome.attempt.passed),
        "oob_progress": bool(request.htmx),
    }
    template = "courses/module_detail.html"
    if request.htmx:
        template += "#knowledge-check"
    return render(request, template, context, status=refusal.status if refusal else 200)
