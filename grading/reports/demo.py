"""Demo organisation for the embedded mode: departments, managers, employees, assignments and
some progress, so /reports/ shows real numbers as soon as `make run` starts."""

from __future__ import annotations

import datetime
import random
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from courses.models import Course, Department, EmployeeProfile, Enrollment, Module
from grading.models import AuditEvent, CourseStaff, ModuleProgress
from grading.reports.services import assignment_create

DEPARTMENTS = [
    ("engineering", "Engineering"),
    ("customer-service", "Customer Service"),
    ("finance", "Finance"),
    ("sales", "Sales"),
    ("operations", "Operations"),
]
FIRST = [
    "Ada",
    "Ben",
    "Chloé",
    "Dev",
    "Eva",
    "Femi",
    "Grace",
    "Hugo",
    "Ines",
    "Jon",
    "Kira",
    "Luis",
]
LAST = ["Okafor", "Nguyen", "Müller", "Silva", "Kowalski", "Haddad", "Tanaka", "Berg", "Rossi"]
PER_DEPARTMENT = 6
# Demo assignments relative to today: (assigned days ago, due in days). Customer service
# is overdue on purpose, so the report's overdue list has people in it.
DEMO_DUE: dict[str, tuple[int, int]] = {
    "engineering": (14, 21),
    "customer-service": (40, -5),
    "sales": (7, 10),
    "finance": (20, 2),
}


@transaction.atomic
def demo_organisation_create(*, course_slugs: list[str]) -> int:
    """Create the demo staff once (idempotent: nothing happens if they exist). Returns how many."""
    user_model = get_user_model()
    if EmployeeProfile.objects.filter(employee_id="E-1001").exists():
        return 0
    rng = random.Random(2026)
    today = timezone.localdate()
    hr = user_model.objects.filter(username="hr").first()
    instructor = user_model.objects.filter(username="instructor").first()
    courses = list(Course.objects.filter(slug__in=course_slugs))
    if instructor:
        for course in courses:
            CourseStaff.objects.get_or_create(course=course, user=instructor)
    departments = {
        slug: Department.objects.get_or_create(slug=slug, defaults={"name": name})[0]
        for slug, name in DEPARTMENTS
    }
    number, created = 1001, 0
    for department in departments.values():
        manager = None
        for i in range(PER_DEPARTMENT):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            username = f"demo{number}"
            user = user_model.objects.create_user(
                username=username,
                first_name=first,
                last_name=last,
                email=f"{username}@example.com",
                password=None,
            )
            EmployeeProfile.objects.create(
                user=user,
                employee_id=f"E-{number}",
                department=department,
                manager=manager if i else None,
            )
            manager = manager or user  # the first of each department manages the others
            number += 1
            created += 1
    # Three departments assigned as a whole, a fourth person by person; each assigned
    # DEMO_DUE[slug][0] days ago, due DEMO_DUE[slug][1] days from today.
    for course in courses:
        for slug, (_, days) in DEMO_DUE.items():
            kwargs: dict[str, Any] = (
                {"learners": user_model.objects.filter(profile__department=departments[slug])[:3]}
                if slug == "finance"
                else {"departments": [departments[slug]]}
            )
            assignment_create(
                course=course, due_date=today + datetime.timedelta(days=days), actor=hr, **kwargs
            )
        _demo_backdate_assignments(course, departments, now=timezone.now())
        _demo_progress(course, rng, today)
    return created


def _demo_backdate_assignments(
    course: Course, departments: dict[str, Department], *, now: datetime.datetime
) -> None:
    """Each department's people (and the audit trail) were assigned before their due date,
    not on the day the demo was made: the overdue department weeks before its date."""
    for slug, (ago, _) in DEMO_DUE.items():
        at = now - datetime.timedelta(days=ago)
        people = Enrollment.objects.filter(
            course=course, learner__profile__department=departments[slug]
        )
        learner_ids = list(people.values_list("learner_id", flat=True))
        people.update(enrolled_at=at)
        AuditEvent.objects.filter(course=course, learner_id__in=learner_ids).update(at=at)
        AuditEvent.objects.filter(course=course, department=departments[slug]).update(at=at)


def _demo_progress(course: Course, rng: random.Random, today: datetime.date) -> None:
    """Some learners finished (at dates over the last weeks), some started, some not yet."""
    modules = list(Module.objects.filter(course=course).order_by("stage__position", "position"))
    required = [m for m in modules if m.required]
    now = timezone.now()
    enrollments = Enrollment.objects.filter(
        course=course, learner__username__startswith="demo"
    ).order_by("learner__username")
    rows = []
    for enrollment in enrollments:
        roll = rng.random()
        if roll < 0.25:
            continue  # not started
        finished = roll > 0.6
        count = len(required) if finished else rng.randint(1, max(1, len(required) - 1))
        # They start within a few days of being assigned (enrolled_at, backdated above).
        started = min(enrollment.enrolled_at + datetime.timedelta(days=rng.uniform(0, 4)), now)
        for n, module in enumerate(required[:count]):
            done_at = started + datetime.timedelta(days=n * rng.uniform(0.3, 1.5))
            rows.append(
                ModuleProgress(
                    learner_id=enrollment.learner_id,
                    module=module,
                    status=ModuleProgress.Status.COMPLETED,
                    completed_at=min(done_at, now),
                    best_score=round(rng.uniform(62, 98), 1)
                    if module.kind == Module.Kind.LAB
                    else None,
                )
            )
        if finished:
            finished_at = min(started + datetime.timedelta(days=count * 0.9), now)
            Enrollment.objects.filter(pk=enrollment.pk).update(completed_at=finished_at)
    ModuleProgress.objects.bulk_create(rows, ignore_conflicts=True)
