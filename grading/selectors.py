"""Where a learner stands: per-module status, stage unlocking, course progress.

Unlocking is computed, never stored: the first stage is open, and a stage
opens once every required module of every stage before it is complete.
`ModuleProgress` rows are the only input, so there is one source of truth.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Prefetch
from django.http import Http404
from django.utils.formats import number_format
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from courses.models import Course, Module, Stage
from courses.services import INSTRUCTOR_GROUP
from grading.evaluation import WeightRules
from grading.models import CourseStaff, ModuleProgress
from labs.models import Lab, Submission
from labs.selectors import validation_verdict

NOT_STARTED = "not_started"


@dataclass
class ModuleState:
    module: Module
    status: str  # NOT_STARTED or a ModuleProgress.Status value
    best_score: float | None
    is_open: bool

    @property
    def is_complete(self) -> bool:
        return self.status == ModuleProgress.Status.COMPLETED

    @property
    def status_label(self) -> str:
        if not self.is_open:
            return _("Locked")
        if self.status == NOT_STARTED:
            return _("Not started")
        return str(ModuleProgress.Status(self.status).label)


@dataclass
class StageState:
    stage: Stage
    modules: list[ModuleState]
    is_open: bool
    # Required modules of earlier stages still to complete before this one opens.
    missing: list[ModuleState] = field(default_factory=list)

    @property
    def is_complete(self) -> bool:
        return all(state.is_complete for state in self.modules if state.module.required)


@dataclass
class CourseProgress:
    course: Course
    stages: list[StageState]

    @property
    def modules(self) -> list[ModuleState]:
        return [state for stage in self.stages for state in stage.modules]

    @property
    def required_total(self) -> int:
        return sum(1 for state in self.modules if state.module.required)

    @property
    def required_done(self) -> int:
        return sum(1 for state in self.modules if state.module.required and state.is_complete)

    @property
    def percent(self) -> int:
        total = self.required_total
        return round(100 * self.required_done / total) if total else 0

    @property
    def is_complete(self) -> bool:
        return self.required_total > 0 and self.required_done == self.required_total

    def state_of(self, module: Module) -> ModuleState:
        for state in self.modules:
            if state.module.pk == module.pk:
                return state
        raise KeyError(module.slug)

    def stage_of(self, module: Module) -> StageState:
        for stage in self.stages:
            if stage.stage.pk == module.stage_id:
                return stage
        raise KeyError(module.slug)

    def neighbours(self, module: Module) -> tuple[ModuleState | None, ModuleState | None]:
        states = self.modules
        index = next(i for i, state in enumerate(states) if state.module.pk == module.pk)
        previous = states[index - 1] if index > 0 else None
        following = states[index + 1] if index + 1 < len(states) else None
        return previous, following

    @property
    def next_up(self) -> ModuleState | None:
        """The first open module that is not complete: where 'Continue' leads."""
        return next((s for s in self.modules if s.is_open and not s.is_complete), None)


def course_progress(*, learner: User, course: Course) -> CourseProgress:
    """Three queries whatever the course size: stages, modules, this learner's progress."""
    stages = list(
        course.stages.order_by("position", "id").prefetch_related(
            Prefetch("modules", queryset=Module.objects.order_by("position", "id"))
        )
    )
    progress = {
        row.module_id: row
        for row in ModuleProgress.objects.filter(learner=learner, module__course=course)
    }
    return build_course_progress(course, stages, progress)


def build_course_progress(
    course: Course, stages: Iterable[Stage], progress: dict[int, ModuleProgress]
) -> CourseProgress:
    result: list[StageState] = []
    missing_so_far: list[ModuleState] = []
    for stage in stages:
        is_open = not missing_so_far
        states = []
        for module in stage.modules.all():
            row = progress.get(module.pk)
            states.append(
                ModuleState(
                    module=module,
                    status=row.status if row else NOT_STARTED,
                    best_score=row.best_score if row else None,
                    is_open=is_open,
                )
            )
        result.append(
            StageState(stage=stage, modules=states, is_open=is_open, missing=list(missing_so_far))
        )
        missing_so_far += [s for s in states if s.module.required and not s.is_complete]
    return CourseProgress(course=course, stages=result)


def module_is_open(*, learner: User, module: Module) -> bool:
    return course_progress(learner=learner, course=module.course).state_of(module).is_open


# --------------------------------------------------------------------------
# Feedback on a graded run

# Beyond this many labels the full matrix is offered folded; the top confusions lead.
FULL_MATRIX_LABELS = 15
OVERFIT_GAP = 0.05


# The graded metric's name as a grade stores it (in English, the same for every reader).
METRIC_NAMES: dict[str, str] = {
    Lab.Metric.CLASS_F1: "f1:{label}",
    Lab.Metric.ROUTER: "in-scope acc. & OOS recall (h-mean)",
}


def metric_display(stored: str) -> str:
    """A grade's stored metric name as the result panel says it, in the reader's language."""
    if stored.startswith("f1:"):
        return _("f1:%(label)s") % {"label": stored[3:]}
    names = {
        Lab.Metric.ACCURACY.value: _("accuracy"),
        Lab.Metric.MACRO_F1.value: _("macro_f1"),
        METRIC_NAMES[Lab.Metric.ROUTER]: _("in-scope acc. & OOS recall (h-mean)"),
    }
    return names.get(stored, stored)


def grade_feedback(*, submission: Any) -> dict[str, Any] | None:
    """What the learner sees about a graded run. No held-out text is ever part of it."""
    from grading.models import Grade

    try:
        grade = submission.grade
    except Grade.DoesNotExist:
        return None
    metrics = grade.metrics
    labels = metrics["labels"]
    matrix = metrics["confusion_matrix"]
    rows = []
    for i, label in enumerate(labels):
        total = sum(matrix[i]) or 1
        rows.append({"label": label, "cells": [(n, round(n / total, 3)) for n in matrix[i]]})
    confusions = sorted(
        (
            (matrix[i][j], labels[i], labels[j])
            for i in range(len(labels))
            for j in range(len(labels))
            if i != j and matrix[i][j]
        ),
        reverse=True,
    )[:10]
    # The kept epoch's dev accuracy: with early stopping it is not the last epoch's.
    last_dev = (submission.result or {}).get("final_dev_accuracy")
    if last_dev is None:
        last_dev = (submission.dev_curve or [{}])[-1].get("dev_accuracy")
    gap = (last_dev - metrics["accuracy"]) if last_dev is not None else None
    previous_best = (
        Grade.objects.filter(
            submission__learner_id=submission.learner_id,
            submission__lab_id=submission.lab_id,
            submission__validation_of="",
            graded_at__lt=grade.graded_at,
        )
        .order_by("-score")
        .values_list("score", flat=True)
        .first()
    )
    return {
        "grade": grade,
        "metrics": metrics,
        "per_class": sorted(metrics["per_class"], key=lambda r: r["f1"]),
        "matrix_rows": rows,
        "labels": labels,
        "show_full_matrix": len(labels) <= FULL_MATRIX_LABELS,
        "top_confusions": confusions,
        "dev_accuracy": last_dev,
        "gap": gap,
        # How far apart, whichever is higher: "agree within 0.041", never "within -0.041".
        "gap_size": abs(gap) if gap is not None else None,
        "overfitting": gap is not None and gap > OVERFIT_GAP,
        "previous_best": previous_best,
        "reference_score": submission.lab.reference_score,
        "metric_name": metric_display(grade.metric),
        "router": metrics.get("router"),
        "floors": [floor_feedback(floor) for floor in grade.floors],
        "score_reached": grade.score >= grade.pass_mark,
        "weights": weight_check_feedback(grade.weight_check),
        "next_steps": []
        if grade.passed or submission.validation_of
        else next_steps(submission=submission, floors=grade.floors),
        # A validation run is the operator's, worded as such ("passes as it should").
        "validation": validation_verdict(submission.validation_of, passed=grade.passed)
        if submission.validation_of
        else None,
    }


# A class found less often than this is one the model "almost never finds".
RARELY_FOUND = 0.1


def floor_feedback(floor: dict[str, Any]) -> dict[str, Any]:
    """A floor of a grade as the result panel says it: what, whose, and why it matters."""
    name, actual = floor["floor"], floor["actual"]
    if name == Lab.Floor.MACRO_F1:
        what, why = _("macro-F1"), _("some classes are handled much worse than others")
    elif name == Lab.Floor.CLASS_RECALL:
        what = _("recall of")
        why = (
            _("the model almost never finds this class")
            if actual < RARELY_FOUND
            else _("the model misses too many of this class")
        )
    else:
        what, why = _("F1 of"), _("this class is rarely found or often confused with others")
    return {**floor, "what": what, "why": why}


# What to try after a missed floor, by the floor's kind (the same advice for every lab).
FLOOR_ADVICE = {
    Lab.Floor.CLASS_RECALL: gettext_lazy(
        "Weight the loss by class or oversample the rare classes, so a small class is not "
        "given up for the large ones."
    ),
    Lab.Floor.CLASS_F1: gettext_lazy(
        "Look at the per-class table and the confusions below: weight the loss by class, or "
        "train longer at a learning rate the weakest classes can follow."
    ),
    Lab.Floor.MACRO_F1: gettext_lazy(
        "Weight the loss by class or oversample the rare classes: macro-F1 counts every class "
        "alike, however few its examples."
    ),
}


def _defined_functions(code: str) -> set[str] | None:
    """The top-level functions a submission defines; None when it does not parse."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def next_steps(*, submission: Any, floors: list[dict[str, Any]]) -> list[str]:
    """A short "what to try next" for a run that did not pass, from the lab's own data:
    the hooks it asks for that the code lacks, the floors missed, and what its ablations
    say the reference needs (each ablation is the reference without one of its ideas)."""
    lab = submission.lab
    steps = []
    defined = _defined_functions(submission.code) or set()
    missing = [hook for hook in lab.required_hooks if hook not in defined]
    if missing:
        steps.append(
            _("Write the hook this lab asks for: %(hooks)s is not defined in your code.")
            % {"hooks": ", ".join(f"<code>{escape(hook)}</code>" for hook in missing)}
        )
    for floor in floors:
        advice = FLOOR_ADVICE.get(floor["floor"])
        if not floor["met"] and advice:
            steps.append(str(advice))
    for ablation in lab.ablations:
        if ablation.get("without"):
            steps.append(
                _("The reference solution does not pass without %(idea)s.")
                % {"idea": escape(ablation["without"])}
            )
    return steps


# Beyond this many, the changed tensors are summed up rather than named.
NAMED_TENSORS = 6


def weight_check_feedback(report: dict[str, Any]) -> dict[str, Any] | None:
    """What the grader's check of the saved weights found (None for grades made before it)."""
    if not report:
        return None
    cap = report["max_share"]
    free = [t["name"] for t in report["tensors"] if t["kind"] == "free"]
    ranks = [t["rank"] for t in report["tensors"] if t["kind"] == "low_rank"]
    return {
        "text": _("%(changed)s of %(total)s (%(share)s)")
        % {
            "changed": number_format(report["changed_params"], force_grouping=True),
            "total": number_format(report["total_params"], force_grouping=True),
            "share": f"{report['share']:.2%}",
        },
        "cap_text": f"{cap * 100:g}%" if cap is not None else "",
        "free": free[:NAMED_TENSORS],
        "free_more": max(0, len(free) - NAMED_TENSORS),
        "low_rank_count": len(ranks),
        "highest_rank": max(ranks, default=0),
        "max_rank": report["max_rank"],
    }


def lab_weight_rules(lab: Lab) -> WeightRules:
    """The lab's `checkpoint:` rules and share cap, as the grader applies them."""
    rules = lab.checkpoint_rules
    if rules is None:  # no section: any tensor may change, up to the cap if there is one
        return WeightRules(max_share=lab.max_trainable_share)
    return WeightRules(
        may_change=tuple(rules.get("may_change") or ()),
        low_rank=tuple(rules.get("low_rank") or ()),
        max_rank=rules.get("max_rank"),
        max_share=lab.max_trainable_share,
    )


def weight_rules_text(lab: Lab) -> str:
    """What the lab page says the grader accepts of the saved weights ("" without rules)."""
    rules = lab_weight_rules(lab)
    cap = (
        _("%(percent)s%% of the parameters") % {"percent": f"{rules.max_share * 100:g}"}
        if rules.max_share is not None
        else ""
    )
    if lab.checkpoint_rules is None:
        return _("changes to at most %(cap)s") % {"cap": cap} if cap else ""
    allowed = _("changes only to %(allowed)s") % {"allowed": rules.allowed()}
    return (
        _("%(allowed)s, at most %(cap)s in all") % {"allowed": allowed, "cap": cap}
        if cap
        else allowed
    )


def submission_get_for_viewer(*, user: User, submission_id: int) -> tuple[Submission, bool]:
    """A run for its own page: (the run, whether this viewer only looks on).

    Its learner sees it as theirs; a superuser, or an instructor who teaches the run's
    course (as in the admin), sees it read-only. Anyone else, HR included, gets a 404, as
    for an id that does not exist: HR reads progress, not code."""
    try:
        submission = Submission.objects.select_related("lab__module__course", "learner").get(
            pk=submission_id
        )
    except Submission.DoesNotExist:
        raise Http404("No such submission.") from None
    if submission.learner_id == user.pk:
        return submission, False
    if user.is_active and (
        user.is_superuser
        or (
            user.groups.filter(name=INSTRUCTOR_GROUP).exists()
            and CourseStaff.objects.filter(
                user=user, course_id=submission.lab.module.course_id
            ).exists()
        )
    ):
        return submission, True
    raise Http404("No such submission.")
