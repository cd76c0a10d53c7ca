from __future__ import annotations

import pytest

from courses.models import Enrollment, Module
from grading.models import ModuleProgress
from grading.selectors import course_progress
from grading.services import ModuleLocked, NotSelfCompletable, module_mark_complete


def complete(learner, course, *slugs):
    for slug in slugs:
        module_mark_complete(learner=learner, module=Module.objects.get(course=course, slug=slug))


def test_first_stage_is_open_and_later_stages_are_locked(learner, course):
    progress = course_progress(learner=learner, course=course)
    assert [s.is_open for s in progress.stages] == [True, False]
    assert [m.module.slug for m in progress.stages[1].missing] == ["intro", "loss"]


def test_a_stage_opens_when_every_required_module_before_it_is_complete(learner, course):
    complete(learner, course, "intro")
    assert not course_progress(learner=learner, course=course).stages[1].is_open
    complete(learner, course, "loss")
    progress = course_progress(learner=learner, course=course)
    assert progress.stages[1].is_open
    assert progress.stages[1].missing == []


def test_optional_modules_never_hold_a_stage_back(learner, course):
    complete(learner, course, "intro", "loss")
    progress = course_progress(learner=learner, course=course)
    assert progress.state_of(Module.objects.get(slug="extra")).status == "not_started"
    assert progress.stages[1].is_open


def test_a_learner_cannot_complete_a_locked_module(learner, course):
    with pytest.raises(ModuleLocked, match="Complete first: “Intro”, “Loss”"):
        complete(learner, course, "deeper")
    assert not ModuleProgress.objects.filter(learner=learner, module__slug="deeper").exists()


def test_a_lab_cannot_be_marked_complete_by_hand(learner, course):
    complete(learner, course, "intro", "loss")
    with pytest.raises(NotSelfCompletable):
        complete(learner, course, "lab")


def test_progress_is_per_learner(learner, outsider, course):
    complete(learner, course, "intro", "loss")
    assert course_progress(learner=learner, course=course).stages[1].is_open
    assert not course_progress(learner=outsider, course=course).stages[1].is_open


def test_completing_marks_enrollment_and_percent(learner, course):
    complete(learner, course, "intro")
    progress = course_progress(learner=learner, course=course)
    assert (progress.required_done, progress.required_total, progress.percent) == (1, 4, 25)
    assert Enrollment.objects.filter(
        learner=learner, course=course, completed_at__isnull=True
    ).exists()


def test_enrollment_completes_when_every_required_module_is_complete(learner, course):
    Module.objects.filter(slug="lab").update(required=False)
    complete(learner, course, "intro", "loss", "deeper")
    assert Enrollment.objects.get(learner=learner, course=course).completed_at is not None


def test_completing_twice_keeps_the_first_completion_time(learner, course):
    complete(learner, course, "intro")
    first = ModuleProgress.objects.get(learner=learner, module__slug="intro").completed_at
    complete(learner, course, "intro")
    assert ModuleProgress.objects.get(learner=learner, module__slug="intro").completed_at == first
