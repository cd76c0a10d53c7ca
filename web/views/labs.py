"""Lab submissions, the run panel's polling and cancelling, a run's own page, dataset cards.

A lab's page itself is its module's page (web.views.courses.module_detail).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from academy.http import SignedInRequest
from academy.refusals import Refusal
from labs.selectors import dataset_get, submission_get_for_learner
from labs.services.submissions import submission_cancel
from web.selectors import (
    dataset_page_context,
    finished_run_context,
    lab_get_visible,
    lab_page_context,
    run_context,
    submission_page_context,
)
from web.services import lab_submit


@login_required
@require_POST
def submit(request: SignedInRequest, course_slug: str, slug: str) -> HttpResponse:
    module, lab = lab_get_visible(user=request.user, course_slug=course_slug, slug=slug)
    refusal = None
    try:
        lab_submit(learner=request.user, module=module, lab=lab, code=request.POST.get("code", ""))
    except Refusal as exc:
        refusal = exc
    if not request.htmx:
        if refusal:
            messages.error(request, refusal.message)
        return redirect("courses:module", course_slug=course_slug, slug=slug)
    context = {
        **lab_page_context(learner=request.user, module=module, lab=lab),
        "submit_error": refusal.message if refusal else None,
    }
    return render(
        request,
        "labs/lab_detail.html#run-panel",
        context,
        status=refusal.status if refusal else 200,
    )


@login_required
@vary_on_headers("HX-Request")
def run_status(request: SignedInRequest, submission_id: int) -> HttpResponse:
    submission = submission_get_for_learner(learner=request.user, submission_id=submission_id)
    if not request.htmx:
        return redirect("labs:submission", submission_id=submission.pk)
    if submission.is_active:
        return render(
            request, "labs/lab_detail.html#run-status", run_context(submission=submission)
        )
    # Final: stop polling, and refresh out of band what the outcome changes beside the panel
    # (history, "Your best", the progress panel with its stage map), so no reload is needed.
    context = finished_run_context(learner=request.user, submission=submission)
    parts = [
        render_to_string("labs/lab_detail.html#run-status", context, request),
        render_to_string("labs/lab_detail.html#lab-bar", context, request),
        render_to_string("courses/module_detail.html#progress-panel", context, request),
    ]
    return HttpResponseStopPolling("".join(parts))


@login_required
@require_POST
def cancel(request: SignedInRequest, submission_id: int) -> HttpResponse:
    submission = submission_get_for_learner(learner=request.user, submission_id=submission_id)
    submission = submission_cancel(submission=submission)
    if request.htmx:
        return render(
            request, "labs/lab_detail.html#run-status", run_context(submission=submission)
        )
    return redirect("labs:submission", submission_id=submission.pk)


@login_required
def submission_detail(request: SignedInRequest, submission_id: int) -> HttpResponse:
    submission = submission_get_for_learner(learner=request.user, submission_id=submission_id)
    context = submission_page_context(submission=submission)
    return render(request, "labs/submission_detail.html", context)


@login_required
def dataset_detail(request: SignedInRequest, slug: str) -> HttpResponse:
    context = dataset_page_context(dataset=dataset_get(slug=slug))
    return render(request, "labs/dataset_detail.html", context)
