"""Read models of the learner pages: everything a page shows, read in one place.

Each function gathers what one page (or one of its htmx partials) renders, from the
domain apps' own selectors; the views only choose which of these to call and which
template to render. Nothing here writes: a first visit's "started" is recorded by
web.services.module_open before the page is read.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.http import Http404
from django.utils import timezone
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, PythonLexer

from academy import charts
from courses.draws import draw_new, draw_replay, draw_sign
from courses.models import CheckAttempt, Course, Module
from courses.rendering import PYGMENTS_CSS_CLASS
from courses.selectors import (
    check_attempt_latest,
    check_feedback,
    check_questions,
    course_list_visible,
    enrollment_get,
    enrollment_list_for_learner,
    module_get_visible,
)
from courses.services import CheckOutcome, check_retry_refusal
from grading.selectors import CourseProgress, course_progress, grade_feedback, weight_rules_text
from labs.models import Dataset, Example, Lab, Submission
from labs.selectors import (
    attempts_reset_at,
    attempts_used_today,
    dataset_card,
    lab_pass_floors,
    queue_position,
    submission_active,
    submission_list_for_lab,
)

# Past runs listed beside a lab's run panel; older ones are on no page (yet).
HISTORY_ROWS = 20


# --------------------------------------------------------------------------
# Courses and modules


def catalog_rows(*, user: User) -> list[tuple[Course, Any]]:
    """Every course this user may see, each with their enrollment in it (or None)."""
    courses = course_list_visible(user=user).prefetch_related("stages")
    enrolled = {e.course_id: e for e in enrollment_list_for_learner(learner=user)}
    return [(course, enrolled.get(course.pk)) for course in courses]


def my_learning_rows(*, learner: User) -> list[dict[str, Any]]:
    """The learner's enrollments with their progress: open assignments first, the soonest
    due first; finished courses last."""
    rows: list[dict[str, Any]] = [
        {"enrollment": e, "progress": course_progress(learner=learner, course=e.course)}
        for e in enrollment_list_for_learner(learner=learner)
    ]
    rows.sort(
        key=lambda r: (
            r["enrollment"].completed_at is not None,
            r["enrollment"].due_date is None,
            r["enrollment"].due_date or r["enrollment"].enrolled_at.date(),
        )
    )
    return rows


def course_page_context(*, learner: User, course: Course) -> dict[str, Any]:
    return {
        "course": course,
        "progress": course_progress(learner=learner, course=course),
        "enrollment": enrollment_get(learner=learner, course=course),
    }


def _place_in_course(module: Module, progress: CourseProgress) -> dict[str, Any]:
    """Where the module stands in its course: what the page header and stage map show."""
    previous, following = progress.neighbours(module)
    return {
        "course": module.course,
        "module": module,
        "progress": progress,
        "state": progress.state_of(module),
        "stage_state": progress.stage_of(module),
        "previous": previous,
        "following": following,
    }


def module_page_context(
    *,
    learner: User,
    module: Module,
    progress: CourseProgress | None = None,
    outcome: CheckOutcome | None = None,
) -> dict[str, Any]:
    """A lesson's page (or its progress panel), with its knowledge check and, once answered,
    the feedback on `outcome`. `progress` saves a read where the caller has it already."""
    if progress is None:
        progress = course_progress(learner=learner, course=module.course)
    questions = check_questions(module=module) if module.kind != Module.Kind.LAB else []
    attempt: CheckAttempt | None
    if outcome is not None:
        attempt = outcome.attempt
    else:
        attempt = check_attempt_latest(learner=learner, module=module) if questions else None
    if outcome is not None:
        # The attempt as it was shown; a retry from this form answers the same draw.
        drawn = draw_replay(outcome.attempt.draw, {q.pk: q for q in questions})
    else:
        drawn = draw_new(module=module, questions=questions) if questions else []
    return {
        **_place_in_course(module, progress),
        "enrollment": enrollment_get(learner=learner, course=module.course),
        "has_check": bool(questions),
        "check_rows": check_feedback(drawn=drawn, outcome=outcome),
        "check_draw": draw_sign(learner_id=learner.pk, module=module, drawn=drawn) if drawn else "",
        "check_pool_size": len(questions),
        "check_attempt": attempt,
        "check_submitted": outcome is not None,
        "check_retry_refusal": check_retry_refusal(
            module=module, latest=attempt, now=timezone.now()
        ),
    }


# --------------------------------------------------------------------------
# Labs and their runs


def lab_of(*, module: Module) -> Lab | None:
    """The module's lab; None for a lesson, or a lab module whose lab is not written yet."""
    if module.kind != Module.Kind.LAB:
        return None
    try:
        return module.lab
    except Lab.DoesNotExist:
        return None


# What a lab's "Take it home" offers: the files a course folder ships in
# takehome/<lab slug>/, the lab's public training split as train.csv, and the dataset's
# own dev split as dev.csv where it has one.
TAKEHOME_FILES = ("README.md", "train.py", "train.ipynb")
TAKEHOME_TRAIN_CSV = "train.csv"
TAKEHOME_DEV_CSV = "dev.csv"


def takehome_folder(*, module: Module) -> Path:
    """Where a shipped course keeps this lab's take-home files (the folder is named by the
    course's slug, as courses/content/ ships it)."""
    return settings.BASE_DIR / "courses" / "content" / module.course.slug / "takehome" / module.slug


def takehome_files(*, module: Module, dataset: Dataset) -> list[str]:
    """The take-home files this lab offers, the data last; none when the course ships none."""
    folder = takehome_folder(module=module)
    present = [name for name in TAKEHOME_FILES if (folder / name).is_file()]
    if not present:
        return []
    has_dev = dataset.examples.filter(split=Example.Split.DEV).exists()
    return [*present, TAKEHOME_TRAIN_CSV, *([TAKEHOME_DEV_CSV] if has_dev else [])]


def lab_get_visible(
    *, user: User | AnonymousUser, course_slug: str, slug: str
) -> tuple[Module, Lab]:
    """The module and its lab if this user may see the module, else 404."""
    module = module_get_visible(user=user, course_slug=course_slug, slug=slug)
    try:
        return module, module.lab
    except Lab.DoesNotExist:
        raise Http404("This module has no lab.") from None


def module_preview_context(*, user: User, module: Module) -> dict[str, Any]:
    """The learner page of `module` as it will be once its draft is published, for its
    author: the same template and context, with the draft's body and the module open."""
    if module.draft_saved_at:
        module.body_html = module.draft_html  # this instance only: nothing is saved
    lab = lab_of(module=module)
    if lab is not None:
        context = lab_page_context(learner=user, module=module, lab=lab)
    else:
        context = module_page_context(learner=user, module=module)
    context["state"] = dataclasses.replace(context["state"], is_open=True)
    context["preview_banner"] = (
        f"Preview of the draft saved {timezone.localtime(module.draft_saved_at):%d %b %Y, %H:%M}:"
        " learners still see the published lesson."
        if module.draft_saved_at
        else "Preview: this is the published lesson, as learners see it (no draft)."
    )
    return context


def run_history(*, learner: User, lab: Lab) -> list[Submission]:
    return list(submission_list_for_lab(learner=learner, lab=lab)[:HISTORY_ROWS])


# After this long still importing, the panel says the learner's top-level code is what runs.
STILL_IMPORTING_SECONDS = 20


def run_phase(*, submission: Submission, elapsed: float | None) -> dict[str, Any]:
    """What an active run is doing, in the learner's words, from what the engine reported
    (labs/training/events.py: `loading_code`, `code_imported`, `start`, steps)."""
    if submission.phase == Submission.Phase.GRADING:
        return {"key": "grading", "label": "Grading: the auto-grader is scoring your model"}
    if submission.total_steps:
        return {"key": "training", "label": "Training"}
    if not submission.counts_as_attempt:
        return {"key": "starting", "label": "Starting the sandbox (your code has not run yet)"}
    if not (submission.run_info or {}).get("code_imported"):
        still = elapsed is not None and elapsed >= STILL_IMPORTING_SECONDS
        return {
            "key": "importing",
            "label": "Your code is being imported",
            "still_importing": still,
        }
    return {
        "key": "hooks",
        "label": "Your hooks are running (preprocess over the texts, then the model is built)",
    }


def run_context(*, submission: Submission | None) -> dict[str, Any]:
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
    # Dev loss is measured once an epoch; drawn on the step axis at each epoch's end.
    steps_per_epoch = submission.total_steps / max(
        1, (submission.run_info or {}).get("epochs") or 1
    )
    return {
        "submission": submission,
        "run_phase": run_phase(submission=submission, elapsed=elapsed)
        if submission.is_active
        else None,
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
    *,
    learner: User,
    module: Module,
    lab: Lab,
    progress: CourseProgress | None = None,
) -> dict[str, Any]:
    """A lab's page: editor, run panel (the active run, else the latest), history and quota.
    `progress` saves a read where the caller has it already."""
    if progress is None:
        progress = course_progress(learner=learner, course=module.course)
    history = run_history(learner=learner, lab=lab)
    current = submission_active(learner=learner, lab=lab) or (history[0] if history else None)
    used = attempts_used_today(learner=learner, lab=lab)
    return {
        **_place_in_course(module, progress),
        "lab": lab,
        "pass_floors": lab_pass_floors(lab=lab),
        "weight_rules": weight_rules_text(lab),
        "history": history,
        "attempts_left": max(0, lab.attempts_per_day - used),
        "attempts_reset_at": attempts_reset_at(),
        "initial_code": history[0].code if history else lab.starter_code,
        "dataset": lab.dataset,
        "takehome": takehome_files(module=module, dataset=lab.dataset),
        **run_context(submission=current),
    }


def finished_run_context(*, learner: User, submission: Submission) -> dict[str, Any]:
    """The run panel of a run that has just ended, with everything beside it that a final
    run can change refreshed out of band: the history, "Your best", and the progress panel
    (module status, course percentage, stage unlocks), as a passed knowledge check does."""
    module = submission.lab.module
    progress = course_progress(learner=learner, course=module.course)
    place = _place_in_course(module, progress)
    grade = getattr(submission, "grade", None)  # RelatedObjectDoesNotExist is an AttributeError
    return {
        **place,
        **run_context(submission=submission),
        "history": run_history(learner=learner, lab=submission.lab),
        "lab": submission.lab,
        "pass_floors": lab_pass_floors(lab=submission.lab),
        "weight_rules": weight_rules_text(submission.lab),
        "oob_history": True,
        "oob_progress": True,
        "just_completed": bool(grade and grade.passed and place["state"].is_complete),
    }


def submission_page_context(*, submission: Submission) -> dict[str, Any]:
    """One run's own page: its code, highlighted, and its run panel."""
    code_html = highlight(
        submission.code, PythonLexer(), HtmlFormatter(cssclass=PYGMENTS_CSS_CLASS, linenos="table")
    )
    return {
        "code_html": code_html,
        "module": submission.lab.module,
        **run_context(submission=submission),
    }


# --------------------------------------------------------------------------
# Runs side by side


def _epoch_points(run: Submission) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """A run's training loss and dev loss on an epoch axis: runs with other batch sizes or
    epochs take other numbers of steps, but their epochs line up."""
    steps_per_epoch = run.total_steps / max(1, (run.run_info or {}).get("epochs") or 1) or 1
    train = [(float(step) / steps_per_epoch, float(loss)) for step, loss in run.loss_curve]
    dev = [
        (float(row["epoch"]), float(row["dev_loss"]))
        for row in run.dev_curve
        if row.get("epoch") is not None and row.get("dev_loss") is not None
    ]
    return train, dev


def _fmt_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _run_facts(run: Submission) -> dict[str, Any]:
    """What the comparison table shows of one run besides its hyperparameters: the grader's
    measurement first, then what the run's own process reported."""
    grade = getattr(run, "grade", None) if run.status == Submission.Status.GRADED else None
    metrics = grade.metrics if grade else {}
    result = run.result or {}
    return {
        "outcome": run.get_status_display(),
        "score": round(grade.score, 1) if grade else None,
        "passed": grade.passed if grade else None,
        "held-out accuracy": metrics.get("accuracy"),
        "held-out macro-F1": metrics.get("macro_f1"),
        "dev accuracy (saved model)": result.get("final_dev_accuracy"),
        "epoch kept": result.get("best_epoch"),
        "training time (s)": result.get("wall_s"),
        "samples/s": run.samples_per_second,
        "precision": run.training_precision or None,
    }


def compare_page_context(*, module: Module, runs: Sequence[Submission]) -> dict[str, Any]:
    """Two or more of a learner's runs of one lab side by side: loss curves overlaid (a colour
    per run), hyperparameters and results in one table with differing rows marked, and the
    code of each later run diffed against the first."""
    series: list[charts.Series] = []
    legend = []
    for i, run in enumerate(runs):
        css = f"run-{i}"
        train, dev = _epoch_points(run)
        series.append((f"run #{run.pk} training loss", train, css))
        series.append((f"run #{run.pk} dev loss", dev, f"{css} dev-of-run"))
        legend.append({"run": run, "css": css})
    hyperparameters = [run.run_info.get("hyperparameters") or {} for run in runs]
    keys = sorted({key for hp in hyperparameters for key in hp})
    facts = [_run_facts(run) for run in runs]
    rows = [
        {
            "name": key,
            "group": "hyperparameter",
            "values": [_fmt_value(hp.get(key)) for hp in hyperparameters],
        }
        for key in keys
    ] + [
        {"name": name, "group": "result", "values": [_fmt_value(f[name]) for f in facts]}
        for name in facts[0]
    ]
    for row in rows:
        row["differs"] = len(set(row["values"])) > 1
    first = runs[0]
    diffs = []
    for run in runs[1:]:
        lines = list(
            difflib.unified_diff(
                first.code.splitlines(),
                run.code.splitlines(),
                fromfile=f"run #{first.pk}",
                tofile=f"run #{run.pk}",
                lineterm="",
            )
        )
        html = (
            highlight("\n".join(lines), DiffLexer(), HtmlFormatter(cssclass=PYGMENTS_CSS_CLASS))
            if lines
            else ""
        )
        diffs.append({"old": first, "new": run, "html": html})
    return {
        "module": module,
        "course": module.course,
        "runs": runs,
        "legend": legend,
        "chart": charts.line_chart(
            series,
            title="Loss by epoch, one colour per run (dashed: dev loss)",
            x_label="epoch",
            y_label="loss",
            y_from_zero=False,
        ),
        "rows": rows,
        "diffs": diffs,
    }


def dataset_page_context(*, dataset: Dataset) -> dict[str, Any]:
    card = dataset_card(dataset=dataset)
    chart = charts.bar_chart(
        card["label_counts"], title=f"Training examples per label ({dataset.title})"
    )
    return {"dataset": dataset, "card": card, "chart": chart}
