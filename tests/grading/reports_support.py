"""A small organisation for the HR report tests: two departments, a manager, learners in
every status, on the shared `course` fixture (two stages, four required modules, one lab)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from courses.models import EmployeeProfile, Enrollment, Module
from grading.models import ModuleProgress
from tests.factories import (
    CourseFactory,
    DepartmentFactory,
    ModuleFactory,
    StageFactory,
    UserFactory,
)

TODAY = timezone.localdate()


@dataclass
class Org:
    course: Any
    other_course: Any
    engineering: Any
    finance: Any
    manager: Any
    done: Any  # completed
    started: Any  # in progress, due later
    late: Any  # overdue
    fresh: Any  # not started
    by_username: dict[str, Any]


def employee(username: str, employee_id: str, department, manager=None, **fields):
    user = UserFactory(username=username, **fields)
    EmployeeProfile.objects.create(
        user=user, employee_id=employee_id, department=department, manager=manager
    )
    return user


def complete(user, module: Module, *, score: float | None = None, when=None) -> None:
    ModuleProgress.objects.update_or_create(
        learner=user,
        module=module,
        defaults={
            "status": "completed",
            "best_score": score,
            "completed_at": when or timezone.now(),
        },
    )


def enroll(
    user, course, *, due: int | None, completed_days_ago: int | None = None, assigned_days_ago=20
):
    enrollment = Enrollment.objects.create(
        learner=user,
        course=course,
        due_date=TODAY + datetime.timedelta(days=due) if due is not None else None,
    )
    fields: dict[str, Any] = {
        "enrolled_at": timezone.now() - datetime.timedelta(days=assigned_days_ago)
    }
    if completed_days_ago is not None:
        fields["completed_at"] = timezone.now() - datetime.timedelta(days=completed_days_ago)
    Enrollment.objects.filter(pk=enrollment.pk).update(**fields)
    return enrollment


def build_org(course) -> Org:
    engineering = DepartmentFactory(name="Engineering", slug="engineering")
    finance = DepartmentFactory(name="Finance", slug="finance")
    manager = employee("maya", "E-100", engineering, first_name="Maya", last_name="Boss")
    done = employee("dina", "E-101", engineering, manager, first_name="Dina", last_name="Done")
    started = employee("sam", "E-102", engineering, manager, first_name="Sam", last_name="Started")
    late = employee("lou", "E-103", finance, manager, first_name="Lou", last_name="Late")
    fresh = employee("nia", "E-104", finance, first_name="Nia", last_name="New")
    modules = {m.slug: m for m in Module.objects.filter(course=course)}
    for slug in ("intro", "loss", "deeper"):
        complete(done, modules[slug])
    complete(done, modules["lab"], score=88.0)
    enroll(done, course, due=10, completed_days_ago=2, assigned_days_ago=12)
    complete(started, modules["intro"])
    complete(started, modules["lab"], score=41.5)
    enroll(started, course, due=10)
    complete(late, modules["intro"])
    enroll(late, course, due=-3)
    enroll(fresh, course, due=30)
    other = CourseFactory(slug="other-course", title="Other course")
    stage = StageFactory(course=other, slug="only", position=1)
    ModuleFactory(course=other, stage=stage, slug="o1", position=1)
    enroll(fresh, other, due=None)
    users = [manager, done, started, late, fresh]
    return Org(
        course=course,
        other_course=other,
        engineering=engineering,
        finance=finance,
        manager=manager,
        done=done,
        started=started,
        late=late,
        fresh=fresh,
        by_username={u.username: u for u in users},
    )
