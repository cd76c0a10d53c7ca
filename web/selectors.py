"""Read models of the learner pages: everything a page shows, read in one place.

Each function gathers what one page (or one of its htmx partials) renders, from the
domain apps' own selectors; the views only choose which of these to call and which
template to render. Nothing here writes: a first visit's "started" is recorded by
web.services.module_open before the page is read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import difflib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.http import Http404
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, PythonLexer

from academy import charts
from academy.numbers import count_text, metric_text, score_text
from courses.draws import draw_new, draw_replay, draw_sign
from courses.models import CheckAttempt, CheckQuestion, Course, Module
from courses.rendering import PYGMENTS_CSS_CLASS
from courses.selectors import (
    check_attempt_latest,
    check_feedback,
    check_questions,
    content_translate,
    course_list_visible,
    enrollment_get,
    enrollment_list_for_learner,
    module_get_visible,
)
from courses.services import CheckOutcome, check_retry_refusal
from grading.selectors import (
    CourseProgress,
    course_progress,
    grade_feedback,
    next_steps,
    weight_rules_text,
)
from labs.models import Dataset, Example, Lab, Precheck, Prediction, Submission
from labs.selectors import (
    attempts_reset_at,
    attempts_used_today,
    dataset_card,
    lab_pass_floors,
    precheck_latest,
    queue_position,
    submission_active,
    submission_best_for_lab,
    submission_list_for_lab,
)
from labs.services.queries import MAX_TEXT_CHARS, MAX_TEXTS
from labs.training.contract import HOOKS

# Past runs listed beside a lab's run panel; older ones are on no page (yet).
HISTORY_ROWS = 20


# --------------------------------------------------------------------------
# Courses and modules


def catalog_rows(*, user: User) -> list[tuple[Course, Any]]:
    """Every course this user may see, each with their enrollment in it (or None)."""
    courses = list(course_list_visible(user=user).prefetch_related("stages"))
    enrolled = {e.course_id: e for e in enrollment_list_for_learner(learner=user)}
    content_translate(courses=courses, stages=[s for c in courses for s in c.stages.all()])
    return [(course, enrolled.get(course.pk)) for course in courses]


def progress_translate(
    progresses: list[CourseProgress],
    *,
    modules: tuple[Module, ...] = (),
    questions: list[CheckQuestion] | None = None,
) -> None:
    """The courses, stages and modules these progress maps show, in the learner's language
    (with `modules` and `questions` shown beside them), in one look-up whatever their number."""
    content_translate(
        courses=[p.course for p in progresses] + [m.course for m in modules],
        stages=[s.stage for p in progresses for s in p.stages] + [m.stage for m in modules],
        modules=[s.module for p in progresses for s in p.modules] + list(modules),
        questions=questions or [],
    )


def my_learning_rows(*, learner: User) -> list[dict[str, Any]]:
    """The learner's enrollments with their progress: open assignments first, the soonest
    due first; finished courses last."""
    rows: list[dict[str, Any]] = [
        {"enrollment": e, "progress": course_progress(learner=learner, course=e.course)}
        for e in enrollment_list_for_learner(learner=learner)
    ]
    progress_translate([r["progress"] for r in rows])
    rows.sort(
        key=lambda r: (
            r["enrollment"].completed_at is not None,
            r["enrollment"].due_date is None,
            r["enrollment"].due_date or r["enrollment"].enrolled_at.date(),
        )
    )
    return rows


def course_page_context(*, learner: User, course: Course) -> dict[str, Any]:
    progress = course_progress(learner=learner, course=course)
    progress_translate([progress])
    return {
        "course": course,
        "progress": progress,
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
    # After the draw and the grading, which read the English rows: only the texts change.
    progress_translate([progress], modules=(module,), questions=questions)
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
    content_translate(modules=[module], drafts=True)  # a translation's draft, in its language
    context["state"] = dataclasses.replace(context["state"], is_open=True)
    context["preview_banner"] = (
        _("Preview of the draft saved %(when)s: learners still see the published lesson.")
        % {"when": date_format(timezone.localtime(module.draft_saved_at), _("j M Y, H:i"))}
        if module.draft_saved_at
        else _("Preview: this is the published lesson, as learners see it (no draft).")
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
        return {"key": "grading", "label": _("Grading: the auto-grader is scoring your model")}
    if submission.total_steps:
        return {"key": "training", "label": _("Training")}
    if not submission.counts_as_attempt:
        return {"key": "starting", "label": _("Starting the sandbox (your code has not run yet)")}
    if not (submission.run_info or {}).get("code_imported"):
        still = elapsed is not None and elapsed >= STILL_IMPORTING_SECONDS
        return {
            "key": "importing",
            "label": _("Your code is being imported"),
            "still_importing": still,
        }
    return {
        "key": "hooks",
        "label": _("Your hooks are running (preprocess over the texts, then the model is built)"),
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
        # A run the learner's code stopped gets the lab's pointers too (hooks, ablations).
        "error_next_steps": next_steps(submission=submission, floors=[])
        if submission.status == Submission.Status.ERROR and not submission.validation_of
        else [],
        "queue_position": queue_position(submission=submission),
        "elapsed": elapsed,
        "eta": eta,
        "loss_chart": charts.line_chart(
            [
                (_("training loss"), loss, "train"),
                (_("dev loss (end of epoch)"), [(e * steps_per_epoch, v) for e, v in dev], "dev"),
            ],
            title=_("Training loss by step"),
            x_label=_("step"),
            y_label=_("loss"),
            x_max=submission.total_steps or None,
            x_integer=True,
        ),
    }


# What the editor can load: the learner's best graded run, their last run, the starter.
EDITOR_SOURCES = ("best", "last", "starter")


def editor_choices(
    *, learner: User, lab: Lab, last: Submission | None, load: str | None = None
) -> dict[str, Any]:
    """The editor's code and its "Load my best / my last / Reset to starter" choices.

    By default the best-scoring graded run's code (a returning learner whose last try was
    a dead end starts from what worked), else the last run's, else the starter; `load`
    names another of EDITOR_SOURCES."""
    best = submission_best_for_lab(learner=learner, lab=lab)
    sources: dict[str, Submission | None] = {"best": best, "last": last}
    codes = {
        "best": best.code if best else None,
        "last": last.code if last else None,
        "starter": lab.starter_code,
    }
    if load not in EDITOR_SOURCES or codes[load] is None:
        load = "best" if best else "last" if last else "starter"
    return {
        "initial_code": codes[load],
        "editor_loaded": load,
        "editor_loaded_run": sources.get(load),
        "editor_codes": {name: code for name, code in codes.items() if code is not None},
    }


def lab_page_context(
    *,
    learner: User,
    module: Module,
    lab: Lab,
    progress: CourseProgress | None = None,
    load: str | None = None,
) -> dict[str, Any]:
    """A lab's page: editor, run panel (the active run, else the latest), history and quota.
    `progress` saves a read where the caller has it already; `load` picks the editor's
    code (editor_choices)."""
    if progress is None:
        progress = course_progress(learner=learner, course=module.course)
    history = run_history(learner=learner, lab=lab)
    current = submission_active(learner=learner, lab=lab) or (history[0] if history else None)
    used = attempts_used_today(learner=learner, lab=lab)
    progress_translate([progress], modules=(module,))
    return {
        **_place_in_course(module, progress),
        "lab": lab,
        "pass_floors": lab_pass_floors(lab=lab),
        "weight_rules": weight_rules_text(lab),
        "history": history,
        "attempts_left": max(0, lab.attempts_per_day - used),
        "attempts_reset_at": attempts_reset_at(),
        **editor_choices(learner=learner, lab=lab, last=history[0] if history else None, load=load),
        "dataset": lab.dataset,
        "takehome": takehome_files(module=module, dataset=lab.dataset),
        **run_context(submission=current),
        **precheck_context(precheck=precheck_latest(learner=learner, lab=lab)),
    }


def _precheck_lengths(report: dict[str, Any]) -> dict[str, Any]:
    lengths = report["lengths"]
    bins = [
        (
            _("%(low)s to %(high)s tokens") % {"low": int(b["low"]), "high": int(b["high"])},
            float(b["count"]),
        )
        for b in lengths["bins"][:40]
    ]
    keys = ("texts", "max_length", "truncated", "median", "p95", "longest")
    return {
        "precheck_lengths": {key: int(lengths[key]) for key in keys},
        "precheck_lengths_chart": charts.bar_chart(
            bins, title=_("Training texts by length in tokens, after preprocess")
        ),
    }


def _precheck_trainable(report: dict[str, Any]) -> dict[str, Any]:
    trainable = report["trainable"]
    cap = None if trainable.get("cap") is None else float(trainable["cap"])
    if not trainable.get("measured", True):
        return {"precheck_trainable": {"measured": False, "cap": cap}}
    return {
        "precheck_trainable": {
            "measured": True,
            "trainable": int(trainable["trainable_params"]),
            "total": int(trainable["total_params"]),
            "share": float(trainable["trainable_share"]),
            "cap": cap,
            "over_cap": bool(trainable.get("over_cap")),
        }
    }


def _precheck_schedule(report: dict[str, Any]) -> dict[str, Any]:
    schedule = report["schedule"]
    points = [(float(x), float(y)) for x, y in schedule["points"][:400]]
    peak = max(y for _, y in points)
    # Learning rates are ~1e-5: drawn in units of their power of ten, so ticks read.
    power = math.floor(math.log10(peak)) if peak > 0 else 0
    y_label = _("learning rate (x 1e%(power)s)") % {"power": power}
    return {
        "precheck_schedule": {"total_steps": int(schedule["total_steps"]), "peak": peak},
        "precheck_schedule_chart": charts.line_chart(
            [(y_label, [(x, y / 10**power) for x, y in points], "train")],
            title=_("Learning rate at each step of the real run"),
            x_label=_("optimiser step"),
            y_label=y_label,
            x_integer=True,
        ),
    }


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def precheck_context(*, precheck: Precheck | None) -> dict[str, Any]:
    """The precheck panel: the report's checks, and its lengths and schedule as charts.

    The report comes from a process the learner's code shared, so every number is read
    defensively: what is not the shape the engine writes is left out, never trusted."""
    if precheck is None or precheck.status != Precheck.Status.DONE:
        return {"precheck": precheck}
    report = precheck.report if isinstance(precheck.report, dict) else {}
    checks = [
        {
            "name": str(c.get("name", ""))[:60],
            "label": f"{c['name']}()" if c.get("name") in HOOKS else str(c.get("name", "")),
            "status": str(c.get("status", ""))[:20],
            "message": str(c.get("message", ""))[:2000],
            "traceback": str(c.get("traceback", ""))[:4000],
        }
        for c in _listed(report.get("checks"))[:40]
        if isinstance(c, dict)
    ]
    context: dict[str, Any] = {
        "precheck": precheck,
        "precheck_checks": checks,
        "precheck_ok": bool(checks) and all(c["status"] in ("ok", "default") for c in checks),
        "precheck_warnings": [str(w)[:500] for w in _listed(report.get("warnings"))[:20]],
    }
    for section in (_precheck_lengths, _precheck_trainable, _precheck_schedule):
        # A section the engine did not write is left out; the rest is still shown.
        with contextlib.suppress(KeyError, TypeError, ValueError, IndexError, AttributeError):
            context.update(section(report))
    return context


def finished_run_context(*, learner: User, submission: Submission) -> dict[str, Any]:
    """The run panel of a run that has just ended, with everything beside it that a final
    run can change refreshed out of band: the history, "Your best", and the progress panel
    (module status, course percentage, stage unlocks), as a passed knowledge check does."""
    module = submission.lab.module
    progress = course_progress(learner=learner, course=module.course)
    progress_translate([progress], modules=(module,))
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
    module = submission.lab.module
    content_translate(modules=[module])
    return {
        "code_html": code_html,
        "module": module,
        **run_context(submission=submission),
        **try_model_context(submission=submission),
    }


def try_model_context(
    *, submission: Submission, prediction: Prediction | None = None
) -> dict[str, Any]:
    """The "Try your model" box of a graded run: whether its checkpoint is still kept (job
    folders go ACADEMY_JOB_RETENTION_DAYS after a run ends; the worker checks its disk too),
    and the latest answer."""
    kept_until = None
    if submission.finished_at is not None:
        kept_until = submission.finished_at + datetime.timedelta(
            days=settings.ACADEMY_JOB_RETENTION_DAYS
        )
    return {
        "try_model": submission.status == Submission.Status.GRADED,
        "checkpoint_gone": kept_until is not None and kept_until < timezone.now(),
        "retention_days": settings.ACADEMY_JOB_RETENTION_DAYS,
        "max_texts": MAX_TEXTS,
        "max_text_chars": MAX_TEXT_CHARS,
        "prediction": prediction,
        "submission": submission,
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
    """A hyperparameter as the learner wrote it, near enough: 2e-05, 0.1, 64."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _run_facts(run: Submission) -> dict[str, Any]:
    """What the comparison table shows of one run besides its hyperparameters: the grader's
    measurement first, then what the run's own process reported; numbers in the app's
    format (academy/numbers.py)."""
    grade = getattr(run, "grade", None) if run.status == Submission.Status.GRADED else None
    metrics = grade.metrics if grade else {}
    result = run.result or {}
    return {
        _("outcome"): run.get_status_display(),
        _("score"): score_text(grade.score) if grade else None,
        _("passed"): grade.passed if grade else None,
        _("held-out accuracy"): metric_text(metrics.get("accuracy")),
        _("held-out macro-F1"): metric_text(metrics.get("macro_f1")),
        _("dev accuracy (saved model)"): metric_text(result.get("final_dev_accuracy")),
        _("epoch kept"): result.get("best_epoch"),
        _("training time (s)"): count_text(result.get("wall_s")),
        _("samples/s"): count_text(run.samples_per_second),
        _("precision"): run.training_precision or None,
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
        series.append((_("run #%(pk)s training loss") % {"pk": run.pk}, train, css))
        series.append((_("run #%(pk)s dev loss") % {"pk": run.pk}, dev, f"{css} dev-of-run"))
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
            title=_("Loss by epoch, one colour per run (dashed: dev loss)"),
            x_label=_("epoch"),
            y_label=_("loss"),
            x_integer=True,  # ticks at whole epochs; the points between them are steps
            y_from_zero=False,
        ),
        "rows": rows,
        "diffs": diffs,
    }


def dataset_page_context(*, dataset: Dataset) -> dict[str, Any]:
    card = dataset_card(dataset=dataset)
    chart = charts.bar_chart(
        card["label_counts"],
        title=_("Training examples per label (%(dataset)s)") % {"dataset": dataset.title},
    )
    return {"dataset": dataset, "card": card, "chart": chart}
