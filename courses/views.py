"""Learner pages: catalog, my learning, course stage map, module (lesson) pages."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from courses.models import Module
from courses.pagecache import cacheable_for_learner, cached_learner_page
from courses.selectors import (
    check_attempt_latest,
    check_feedback,
    check_questions,
    course_get_visible,
    course_list_visible,
    enrollment_get,
    enrollment_list_for_learner,
    module_get_visible,
)
from courses.services import CheckAnswerError, CheckOutcome, enrollment_create
from grading.selectors import course_progress
from grading.services import (
    ModuleLocked,
    ProgressError,
    check_attempt_submit,
    module_mark_complete,
    module_start,
)


@login_required
def catalog(request: HttpRequest) -> HttpResponse:
    courses = course_list_visible(user=request.user).prefetch_related("stages")
    enrolled = {e.course_id: e for e in enrollment_list_for_learner(learner=request.user)}
    rows = [(course, enrolled.get(course.pk)) for course in courses]
    return render(request, "courses/catalog.html", {"rows": rows})


@login_required
def my_learning(request: HttpRequest) -> HttpResponse:
    rows = [
        {"enrollment": e, "progress": course_progress(learner=request.user, course=e.course)}
        for e in enrollment_list_for_learner(learner=request.user)
    ]
    # Open assignments first, soonest due date first; finished courses last.
    rows.sort(key=lambda r: (r["enrollment"].completed_at is not None,
                             r["enrollment"].due_date is None,
                             r["enrollment"].due_date or r["enrollment"].enrolled_at.date()))  # fmt: skip
    return render(
        request, "courses/my_learning.html", {"rows": rows, "today": timezone.localdate()}
    )


@login_required
@cached_learner_page
def course_detail(request: HttpRequest, slug: str) -> HttpResponse:
    course = course_get_visible(user=request.user, slug=slug)
    context = {
        "course": course,
        "progress": course_progress(learner=request.user, course=course),
        "enrollment": enrollment_get(learner=request.user, course=course),
    }
    return cacheable_for_learner(render(request, "courses/course_detail.html", context))


@login_required
@require_POST
def course_enroll(request: HttpRequest, slug: str) -> HttpResponse:
    course = course_get_visible(user=request.user, slug=slug)
    enrollment_create(learner=request.user, course=course)
    messages.success(request, f"You are enrolled in “{course.title}”.")
    return redirect("courses:course", slug=course.slug)


def _module_context(
    request: HttpRequest, module: Module, *, outcome: CheckOutcome | None = None, **extra: Any
) -> dict[str, Any]:
    progress = course_progress(learner=request.user, course=module.course)
    previous, following = progress.neighbours(module)
    questions = check_questions(module=module) if module.kind != Module.Kind.LAB else []
    return {
        "course": module.course,
        "module": module,
        "progress": progress,
        "state": progress.state_of(module),
        "stage_state": progress.stage_of(module),
        "previous": previous,
        "following": following,
        "enrollment": enrollment_get(learner=request.user, course=module.course),
        "has_check": bool(questions),
        "check_rows": check_feedback(questions=questions, outcome=outcome),
        "check_attempt": outcome.attempt
        if outcome
        else (check_attempt_latest(learner=request.user, module=module) if questions else None),
        "check_submitted": outcome is not None,
        **extra,
    }


@login_required
@vary_on_headers("HX-Request")
@cached_learner_page
def module_detail(request: HttpRequest, course_slug: str, slug: str) -> HttpResponse:
    module = module_get_visible(user=request.user, course_slug=course_slug, slug=slug)
    if module.kind == Module.Kind.LAB and hasattr(module, "lab") and not request.htmx:
        from labs.views import lab_detail

        # The lab page builds its own context from this progress, read once (twice on a
        # first visit, whose start changes it).
        progress = course_progress(learner=request.user, course=module.course)
        state = progress.state_of(module)
        if state.is_open and state.status == "not_started":
            module_start(learner=request.user, module=module)
            progress = None
        return lab_detail(request, module, progress=progress)
    context = _module_context(request, module)
    if context["state"].is_open and context["state"].status == "not_started":
        module_start(learner=request.user, module=module)
        context = _module_context(request, module)
    if request.htmx:
        return render(request, "courses/module_detail.html#progress-panel", context)
    response = render(request, "courses/module_detail.html", context)
    # A lab's page follows its runs and is never cached; a lesson or case study is.
    return response if module.kind == Module.Kind.LAB else cacheable_for_learner(response)


@login_required
@require_POST
@vary_on_headers("HX-Request")
def module_complete(request: HttpRequest, course_slug: str, slug: str) -> HttpResponse:
    module = module_get_visible(user=request.user, course_slug=course_slug, slug=slug)
    error = None
    try:
        module_mark_complete(learner=request.user, module=module)
    except ProgressError as exc:
        error = str(exc)
    if request.htmx:
        context = _module_context(request, module, error=error, just_completed=error is None)
        return render(
            request, "courses/module_detail.html#progress-panel", context,
            status=403 if error else 200,
        )  # fmt: skip
    if error:
        messages.error(request, error)
        return redirect("courses:module", course_slug=course_slug, slug=slug)
    messages.success(request, f"“{module.title}” marked complete.")
    return redirect("courses:module", course_slug=course_slug, slug=slug)


def _is_id(text: str) -> bool:
    # ASCII digits only, and short enough for a database integer (no overflow, no "²").
    return text.isascii() and text.isdigit() and len(text) <= 18


def _answers_from_post(data: Any) -> dict[int, list[int]]:
    """`question-<id>` fields, each with one (radio) or more (checkbox) option ids."""
    answers: dict[int, list[int]] = {}
    for key in data:
        if not key.startswith("question-"):
            continue
        question_id, values = key.removeprefix("question-"), data.getlist(key)
        if not _is_id(question_id) or not all(_is_id(v) for v in values):
            raise CheckAnswerError("Answers must name a question and its options by number.")
        answers[int(question_id)] = [int(v) for v in values]
    return answers


@login_required
@require_POST
@vary_on_headers("HX-Request")
def module_check(request: HttpRequest, course_slug: str, slug: str) -> HttpResponse:
    """Answer a module's knowledge check; the answer is the check with its feedback."""
    module = module_get_visible(user=request.user, course_slug=course_slug, slug=slug)
    outcome, error, status = None, None, 200
    try:
        outcome = check_attempt_submit(
            learner=request.user, module=module, answers=_answers_from_post(request.POST)
        )
    except ModuleLocked as exc:
        error, status = str(exc), 403
    except (ProgressError, CheckAnswerError) as exc:
        error, status = str(exc), 400
    if error and not request.htmx:
        messages.error(request, error)
        return redirect("courses:module", course_slug=course_slug, slug=slug)
    context = _module_context(
        request, module, outcome=outcome, check_error=error,
        just_completed=bool(outcome and outcome.attempt.passed), oob_progress=request.htmx,
    )  # fmt: skip
    template = "courses/module_detail.html"
    if request.htmx:
        template += "#knowledge-check"
    return render(request, template, context, status=status)
