"""The lab page (editor, live run panel, history), submissions and dataset cards."""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from academy.ratelimit import RateLimit, wait_phrase
from courses.models import Module
from courses.rendering import PYGMENTS_CSS_CLASS
from courses.selectors import module_get_visible
from grading.selectors import CourseProgress, course_progress, grade_feedback
from labs import charts
from labs.models import Lab, Submission
from labs.selectors import (
    attempts_reset_at,
    attempts_used_today,
    dataset_card,
    dataset_get,
    queue_position,
    submission_active,
    submission_get_for_learner,
    submission_list_for_lab,
)
from labs.services.submissions import SubmissionRefused, submission_cancel, submission_create

HISTORY_ROWS = 20


def _lab_for(request: HttpRequest, course_slug: str, slug: str) -> tuple[Module, Lab]:
    module = module_get_visible(user=request.user, course_slug=course_slug, slug=slug)
    try:
        return module, module.lab
    except Lab.DoesNotExist:
        from django.http import Http404

        raise Http404("This module has no lab.") from None


def run_context(submission: Submission | None) -> dict[str, Any]:
    """Everything the run panel shows about one submission."""
    if submission is None:
        return {"submission": None}
    elapsed = None
    eta = None
    if submission.started_at:
        end = submission.finished_at or timezone.now()
        elapsed = (end - submission.started_at).total_seconds()
        if submission.is_active and submission.step and submission.total_steps:
            per_step = elapsed / submission.step
            eta = datetime.timedelta(
                seconds=round(per_step * (submission.total_steps - submission.step))
            )
    loss = [(float(s), float(v)) for s, v in submission.loss_curve]
    dev = [
        (float(e["epoch"]), float(e["dev_loss"]))
        for e in submission.dev_curve
        if e.get("dev_loss") is not None
    ]
    steps_per_epoch = submission.total_steps / max(
        1, (submission.run_info or {}).get("epochs") or 1
    )
    return {
        "submission": submission,
        "feedback": grade_feedback(submission=submission)
        if submission.status == Submission.Status.GRADED
        else None,
        "queue_position": queue_position(submission=submission),
        "elapsed": elapsed,
        "eta": eta,
        "loss_chart": charts.line_chart(
            [
                ("training loss", loss, "train"),
                ("dev loss (end of epoch)", [(e * steps_per_epoch, v) for e, v in dev], "dev"),
            ],
            title="Training loss by step",
            x_label="step",
            y_label="loss",
            x_max=submission.total_steps or None,
        ),
    }


def lab_page_context(
    request: HttpRequest, module: Module, lab: Lab, *, progress: CourseProgress | None = None
) -> dict[str, Any]:
    if progress is None:
        progress = course_progress(learner=request.user, course=module.course)
    previous, following = progress.neighbours(module)
    history = list(submission_list_for_lab(learner=request.user, lab=lab)[:HISTORY_ROWS])
    current = submission_active(learner=request.user, lab=lab) or (history[0] if history else None)
    used = attempts_used_today(learner=request.user, lab=lab)
    return {
        "course": module.course,
        "module": module,
        "lab": lab,
        "progress": progress,
        "state": progress.state_of(module),
        "stage_state": progress.stage_of(module),
        "previous": previous,
        "following": following,
        "history": history,
        "attempts_left": max(0, lab.attempts_per_day - used),
        "attempts_reset_at": attempts_reset_at(),
        "initial_code": history[0].code if history else lab.starter_code,
        "dataset": lab.dataset,
        **run_context(current),
    }


@vary_on_headers("HX-Request")
def lab_detail(
    request: HttpRequest, module: Module, *, progress: CourseProgress | None = None
) -> HttpResponse:
    """Rendered for a lab module's page (called by courses.views.module_detail, with the
    learner's progress when it has read it already)."""
    context = lab_page_context(request, module, module.lab, progress=progress)
    return render(request, "labs/lab_detail.html", context)


# Attempts per day are the lab's quota; this only stops bursts of posts (scripts, double clicks).
SUBMIT_BURST = RateLimit("lab-submit", limit=6, window_seconds=60)


@login_required
@require_POST
def submit(request: HttpRequest, course_slug: str, slug: str) -> HttpResponse:
    module, lab = _lab_for(request, course_slug, slug)
    progress = course_progress(learner=request.user, course=module.course)
    error = None
    status = 422
    if wait := SUBMIT_BURST.hit(str(request.user.pk)):
        # Refused posts count too: a script resubmitting broken code is stopped as well.
        error = f"You are submitting too fast: wait {wait_phrase(wait)} and try again."
        status = 429
    elif not progress.state_of(module).is_open:
        error = "This lab is locked: complete the earlier stages first."
    else:
        try:
            submission_create(learner=request.user, lab=lab, code=request.POST.get("code", ""))
        except SubmissionRefused as exc:
            error = str(exc)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("courses:module", course_slug=course_slug, slug=slug)
    context = lab_page_context(request, module, lab)
    context["submit_error"] = error
    return render(
        request, "labs/lab_detail.html#run-panel", context, status=status if error else 200
    )


@login_required
@vary_on_headers("HX-Request")
def run_status(request: HttpRequest, submission_id: int) -> HttpResponse:
    submission = submission_get_for_learner(learner=request.user, submission_id=submission_id)
    if not request.htmx:
        return redirect("labs:submission", submission_id=submission.pk)
    context = run_context(submission)
    if submission.is_active:
        return render(request, "labs/lab_detail.html#run-status", context)
    # Final: stop polling, and refresh the history beside the panel.
    context["history"] = list(
        submission_list_for_lab(learner=request.user, lab=submission.lab)[:HISTORY_ROWS]
    )
    context["lab"] = submission.lab
    context["oob_history"] = True
    response = render(request, "labs/lab_detail.html#run-status", context)
    return HttpResponseStopPolling(response.content)


@login_required
@require_POST
def cancel(request: HttpRequest, submission_id: int) -> HttpResponse:
    submission = submission_get_for_learner(learner=request.user, submission_id=submission_id)
    submission = submission_cancel(submission=submission)
    if request.htmx:
        return render(request, "labs/lab_detail.html#run-status", run_context(submission))
    return redirect("labs:submission", submission_id=submission.pk)


@login_required
def submission_detail(request: HttpRequest, submission_id: int) -> HttpResponse:
    submission = submission_get_for_learner(learner=request.user, submission_id=submission_id)
    code_html = highlight(
        submission.code, PythonLexer(), HtmlFormatter(cssclass=PYGMENTS_CSS_CLASS, linenos="table")
    )
    context = {"code_html": code_html, "module": submission.lab.module, **run_context(submission)}
    return render(request, "labs/submission_detail.html", context)


@login_required
def dataset_detail(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = dataset_get(slug=slug)
    card = dataset_card(dataset=dataset)
    chart = charts.bar_chart(
        card["label_counts"], title=f"Training examples per label ({dataset.title})"
    )
    return render(
        request, "labs/dataset_detail.html", {"dataset": dataset, "card": card, "chart": chart}
    )
