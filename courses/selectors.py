"""Reads of the curriculum, each applying who may see what."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Prefetch, QuerySet
from django.http import Http404

from courses.draws import DrawnQuestion
from courses.models import (
    CheckAttempt,
    CheckOption,
    CheckQuestion,
    Course,
    Enrollment,
    LanguagePreference,
    Module,
)
from courses.numeric import numeric_is_right


def can_preview_unpublished(user: User | AnonymousUser) -> bool:
    return bool(
        user.is_authenticated and (user.is_superuser or user.has_perm("courses.change_course"))
    )


def course_list_visible(*, user: User | AnonymousUser) -> QuerySet[Course]:
    courses = Course.objects.all()
    return courses if can_preview_unpublished(user) else courses.filter(is_published=True)


def course_get_visible(*, user: User | AnonymousUser, slug: str) -> Course:
    """The course if this user may see it, else 404 (unpublished looks like unknown)."""
    try:
        return course_list_visible(user=user).get(slug=slug)
    except Course.DoesNotExist:
        raise Http404("No such course.") from None


def module_get_visible(*, user: User | AnonymousUser, course_slug: str, slug: str) -> Module:
    course = course_get_visible(user=user, slug=course_slug)
    try:
        return Module.objects.select_related("course", "stage").get(course=course, slug=slug)
    except Module.DoesNotExist:
        raise Http404("No such module in this course.") from None


def module_get_for_authoring(*, user: User | AnonymousUser, course_slug: str, slug: str) -> Module:
    """A module for someone who may edit it (its draft included), published course or not."""
    if not user.has_perm("courses.change_module"):
        raise Http404("No such module in this course.")
    try:
        return Module.objects.select_related("course", "stage").get(
            course__slug=course_slug, slug=slug
        )
    except Module.DoesNotExist:
        raise Http404("No such module in this course.") from None


def enrollment_get(*, learner: User, course: Course) -> Enrollment | None:
    return Enrollment.objects.filter(learner=learner, course=course).first()


def enrollment_list_for_learner(*, learner: User) -> QuerySet[Enrollment]:
    return (
        Enrollment.objects.filter(learner=learner, course__is_published=True)
        .select_related("course", "assigned_by")
        .order_by("completed_at", "due_date", "enrolled_at")
    )


def module_has_check(*, module: Module) -> bool:
    return module.questions.filter(retired_at__isnull=True).exists()


def check_questions(*, module: Module) -> list[CheckQuestion]:
    """The live questions of a module's knowledge check with their options (two queries)."""
    return list(
        module.questions.filter(retired_at__isnull=True)
        .order_by("position", "id")
        .prefetch_related(Prefetch("options", queryset=CheckOption.objects.order_by("position")))
    )


def check_attempt_latest(*, learner: User, module: Module) -> CheckAttempt | None:
    return CheckAttempt.objects.filter(learner=learner, module=module).first()


def check_feedback(*, drawn: list[DrawnQuestion], outcome: Any = None) -> list[dict[str, Any]]:
    """The check as the learner sees it, with feedback once they have answered.

    After a failed attempt only the chosen options explain themselves (so a
    retry still needs thought); after a pass every option does and the
    correct ones are marked.
    """
    selected = outcome.selected if outcome else {}
    numbers = outcome.numbers if outcome else {}
    passed = bool(outcome and outcome.attempt.passed)
    rows = []
    for number, shown in enumerate(drawn, start=1):
        question, options = shown.question, shown.options
        if question.numeric_value is not None:
            given = numbers.get(question.pk)
            rows.append(
                {
                    "number": number,
                    "question": question,
                    "numeric": True,
                    "given": "" if given is None else f"{given:g}",
                    "answered": bool(outcome),
                    "is_correct": bool(outcome)
                    and given is not None
                    and numeric_is_right(question, given),
                    # The explanation works the number out: shown only once passed.
                    "explain": passed,
                }
            )
            continue
        chosen = set(selected.get(question.pk, []))
        correct = {o.pk for o in options if o.is_correct}
        rows.append(
            {
                "number": number,
                "question": question,
                "multiple": len(correct) > 1,
                "answered": bool(outcome),
                "is_correct": bool(outcome) and chosen == correct,
                "options": [
                    {
                        "option": option,
                        "selected": option.pk in chosen,
                        "verdict": (
                            ("right" if option.is_correct else "wrong")
                            if option.pk in chosen
                            else ("missed" if passed and option.is_correct else "")
                        ),
                        "explain": option.pk in chosen or passed,
                    }
                    for option in options
                ],
            }
        )
    return rows


def language_preference_of(*, user: User) -> str | None:
    """The interface language this person saved, if any (and if the site still offers it)."""
    language = (
        LanguagePreference.objects.filter(user=user).values_list("language", flat=True).first()
    )
    return language if language in dict(settings.LANGUAGES) else None
