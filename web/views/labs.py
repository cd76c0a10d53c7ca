"""Lab submissions, the run panel's polling and cancelling, a run's own page, dataset cards.

A lab's page itself is its module's page (web.views.courses.module_detail).
"""

from __future__ import annotations

import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from academy.http import SignedInRequest
from academy.refusals import Refusal
from grading.selectors import course_progress, submission_get_for_viewer
from labs.models import Example
from labs.selectors import (
    ComparisonRefused,
    dataset_get,
    dataset_train_rows,
    precheck_get_for_learner,
    prediction_get_for_learner,
    submission_get_for_learner,
    submissions_for_comparison,
)
from labs.services.queries import MAX_TEXT_CHARS, MAX_TEXTS, query_give_up_if_stale
from labs.services.submissions import (
    SubmissionTooLarge,
    submission_cancel,
    submission_too_large_message,
)
from labs.training.data import write_rows
from web.selectors import (
    TAKEHOME_DEV_CSV,
    TAKEHOME_TRAIN_CSV,
    compare_page_context,
    dataset_page_context,
    finished_run_context,
    lab_get_visible,
    lab_page_context,
    precheck_context,
    run_context,
    submission_page_context,
    takehome_files,
    takehome_folder,
    try_model_context,
)
from web.services import lab_precheck, lab_submit, run_predict

PRECHECK_PARTIAL = "labs/_precheck.html"
TRY_PARTIAL = "labs/_try_model.html"


@login_required
@require_POST
def submit(request: SignedInRequest, course_slug: str, slug: str) -> HttpResponse:
    module, lab = lab_get_visible(user=request.user, course_slug=course_slug, slug=slug)
    refusal: Refusal | None = None
    try:
        if getattr(request, "post_too_large", False):  # academy.middleware.oversized_post
            raise SubmissionTooLarge(submission_too_large_message())
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
        "oob_submit_error": True,
    }
    # The refusal goes beside the submit button (out of band), apart from the run panel,
    # which still shows the previous run: the two are not one story.
    parts = [
        render_to_string("labs/lab_detail.html#run-panel", context, request),
        render_to_string("labs/lab_detail.html#submit-error", context, request),
    ]
    return HttpResponse("".join(parts), status=refusal.status if refusal else 200)


@login_required
@require_POST
def precheck(request: SignedInRequest, course_slug: str, slug: str) -> HttpResponse:
    """Check the editor's code against the contract on a worker: no attempt, no grade."""
    module, lab = lab_get_visible(user=request.user, course_slug=course_slug, slug=slug)
    try:
        if getattr(request, "post_too_large", False):  # academy.middleware.oversized_post
            raise SubmissionTooLarge(submission_too_large_message())
        found = lab_precheck(
            learner=request.user, module=module, lab=lab, code=request.POST.get("code", "")
        )
    except Refusal as exc:
        if not request.htmx:
            messages.error(request, exc.message)
            return redirect("courses:module", course_slug=course_slug, slug=slug)
        context = {"precheck": None, "precheck_error": exc.message}
        return render(request, PRECHECK_PARTIAL, context, status=exc.status)
    if not request.htmx:
        return redirect("courses:module", course_slug=course_slug, slug=slug)
    return render(request, PRECHECK_PARTIAL, precheck_context(precheck=found))


@login_required
@vary_on_headers("HX-Request")
def precheck_status(request: SignedInRequest, precheck_id: int) -> HttpResponse:
    found = precheck_get_for_learner(learner=request.user, precheck_id=precheck_id)
    found = query_give_up_if_stale(found)
    if not request.htmx:
        module = found.lab.module
        return redirect("courses:module", course_slug=module.course.slug, slug=module.slug)
    body = render_to_string(PRECHECK_PARTIAL, precheck_context(precheck=found), request)
    return HttpResponse(body) if found.is_active else HttpResponseStopPolling(body)


@login_required
@require_POST
def try_model(request: SignedInRequest, submission_id: int) -> HttpResponse:
    """The learner's texts through their own graded run's model, on a worker."""
    submission = submission_get_for_learner(learner=request.user, submission_id=submission_id)
    texts = request.POST.get("texts", "")[: MAX_TEXTS * (MAX_TEXT_CHARS + 1) * 2].splitlines()
    prediction = None
    try:
        prediction = run_predict(learner=request.user, submission=submission, texts=texts)
    except Refusal as exc:
        if not request.htmx:
            messages.error(request, exc.message)
            return redirect("labs:submission", submission_id=submission.pk)
        context = {
            **try_model_context(submission=submission),
            "try_model": True,  # the box, to say why not
            "try_error": exc.message,
        }
        return render(request, TRY_PARTIAL, context, status=exc.status)
    if not request.htmx:
        return redirect("labs:submission", submission_id=submission.pk)
    context = try_model_context(submission=submission, prediction=prediction)
    return render(request, TRY_PARTIAL, context)


@login_required
@vary_on_headers("HX-Request")
def prediction_status(request: SignedInRequest, prediction_id: int) -> HttpResponse:
    prediction = query_give_up_if_stale(
        prediction_get_for_learner(learner=request.user, prediction_id=prediction_id)
    )
    if not request.htmx:
        return redirect("labs:submission", submission_id=prediction.submission_id)
    context = try_model_context(submission=prediction.submission, prediction=prediction)
    body = render_to_string(TRY_PARTIAL, context, request)
    return HttpResponse(body) if prediction.is_active else HttpResponseStopPolling(body)


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
    submission, onlooker = submission_get_for_viewer(user=request.user, submission_id=submission_id)
    context = {**submission_page_context(submission=submission), "onlooker": onlooker}
    return render(request, "labs/submission_detail.html", context)


@login_required
def compare(request: SignedInRequest, course_slug: str, slug: str) -> HttpResponse:
    """Two or more of the learner's runs of this lab side by side (?runs=12&runs=15)."""
    module, lab = lab_get_visible(user=request.user, course_slug=course_slug, slug=slug)
    try:
        runs = submissions_for_comparison(
            learner=request.user, lab=lab, ids=request.GET.getlist("runs")
        )
    except ComparisonRefused as exc:
        context = {"module": module, "course": module.course, "compare_error": exc.message}
        return render(request, "labs/compare.html", context, status=exc.status)
    return render(request, "labs/compare.html", compare_page_context(module=module, runs=runs))


@login_required
def dataset_detail(request: SignedInRequest, slug: str) -> HttpResponse:
    context = dataset_page_context(dataset=dataset_get(slug=slug))
    return render(request, "labs/dataset_detail.html", context)


@login_required
def takehome_download(
    request: SignedInRequest, course_slug: str, slug: str, name: str
) -> FileResponse:
    """One of a lab's take-home files, or its public training split as train.csv, once the
    learner has passed the lab (the script reproduces the reference run). Only the names
    `takehome_files` lists: never the lab's solution file, never the held-out split."""
    module, lab = lab_get_visible(user=request.user, course_slug=course_slug, slug=slug)
    if name not in takehome_files(module=module, dataset=lab.dataset):
        raise Http404("This lab offers no such file.")
    if not course_progress(learner=request.user, course=module.course).state_of(module).is_complete:
        raise Http404("The take-home files open once you pass this lab.")
    if name in (TAKEHOME_TRAIN_CSV, TAKEHOME_DEV_CSV):
        split = Example.Split.TRAIN if name == TAKEHOME_TRAIN_CSV else Example.Split.DEV
        text = io.StringIO()
        write_rows(text, dataset_train_rows(dataset=lab.dataset, split=split))
        payload = io.BytesIO(text.getvalue().encode("utf-8"))
        return FileResponse(payload, as_attachment=True, filename=name, content_type="text/csv")
    path = takehome_folder(module=module) / name
    return FileResponse(path.open("rb"), as_attachment=True, filename=name)
