"""Writes to learner progress. Each function owns its transaction."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from courses.models import Enrollment, Module
from courses.services import enrollment_create
from grading.models import ModuleProgress
from grading.selectors import course_progress


class ProgressError(Exception):
    """A progress change the rules do not allow; the message is shown to the learner."""


class ModuleLocked(ProgressError):
    pass


class NotSelfCompletable(ProgressError):
    pass


def module_start(*, learner: AbstractBaseUser, module: Module) -> ModuleProgress:
    """Record that a learner opened a module (first visit only)."""
    progress, _ = ModuleProgress.objects.get_or_create(learner=learner, module=module)
    return progress


@transaction.atomic
def module_mark_complete(*, learner: AbstractBaseUser, module: Module) -> ModuleProgress:
    """A learner finishes a theory or case-study module themselves.

    Refused for locked modules (the rule is enforced here, not only hidden in
    the page) and for labs, which complete only through a passing grade.
    """
    if module.kind == Module.Kind.LAB:
        raise NotSelfCompletable("A code lab is completed by passing its auto-graded run.")
    state = course_progress(learner=learner, course=module.course)
    stage = state.stage_of(module)
    if not stage.is_open:
        names = ", ".join(f"“{m.module.title}”" for m in stage.missing)
        raise ModuleLocked(f"This module is locked. Complete first: {names}.")
    enrollment_create(learner=learner, course=module.course)
    progress, _ = ModuleProgress.objects.select_for_update().get_or_create(
        learner=learner, module=module
    )
    if progress.status != ModuleProgress.Status.COMPLETED:
        progress.status = ModuleProgress.Status.COMPLETED
        progress.completed_at = timezone.now()
        progress.save(update_fields=["status", "completed_at", "updated_at"])
    enrollment_refresh_completion(learner=learner, module=module)
    return progress


def enrollment_refresh_completion(*, learner: AbstractBaseUser, module: Module) -> None:
    """Set (or clear) the enrollment's completion from the learner's progress."""
    complete = course_progress(learner=learner, course=module.course).is_complete
    enrollment = Enrollment.objects.filter(learner=learner, course=module.course).first()
    if enrollment is None:
        return
    if complete and enrollment.completed_at is None:
        enrollment.completed_at = timezone.now()
        enrollment.save(update_fields=["completed_at"])
    elif not complete and enrollment.completed_at is not None:
        enrollment.completed_at = None
        enrollment.save(update_fields=["completed_at"])
