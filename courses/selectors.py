"""Reads of the curriculum, each applying who may see what."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from courses.models import Course, Enrollment, Module


def can_preview_unpublished(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(
        user.is_authenticated and (user.is_superuser or user.has_perm("courses.change_course"))
    )


def course_list_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Course]:
    courses = Course.objects.all()
    return courses if can_preview_unpublished(user) else courses.filter(is_published=True)


def course_get_visible(*, user: AbstractBaseUser | AnonymousUser, slug: str) -> Course:
    """The course if this user may see it, else 404 (unpublished looks like unknown)."""
    try:
        return course_list_visible(user=user).get(slug=slug)
    except Course.DoesNotExist:
        raise Http404("No such course.") from None


def module_get_visible(
    *, user: AbstractBaseUser | AnonymousUser, course_slug: str, slug: str
) -> Module:
    course = course_get_visible(user=user, slug=course_slug)
    try:
        return Module.objects.select_related("course", "stage").get(course=course, slug=slug)
    except Module.DoesNotExist:
        raise Http404("No such module in this course.") from None


def enrollment_get(*, learner: AbstractBaseUser, course: Course) -> Enrollment | None:
    return Enrollment.objects.filter(learner=learner, course=course).first()


def enrollment_list_for_learner(*, learner: AbstractBaseUser) -> QuerySet[Enrollment]:
    return (
        Enrollment.objects.filter(learner=learner, course__is_published=True)
        .select_related("course", "assigned_by")
        .order_by("completed_at", "due_date", "enrolled_at")
    )
