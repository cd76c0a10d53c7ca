"""The demo organisation's assignments are relative to today: assigned before they are
due, most due in the coming weeks, one department overdue on purpose (issue 17)."""

from __future__ import annotations

import datetime

from django.utils import timezone

from courses.models import Enrollment
from grading.models import AuditEvent
from grading.reports.demo import DEMO_DUE, demo_organisation_create


def test_every_demo_person_was_assigned_before_their_due_date(course, hr):
    demo_organisation_create(course_slugs=[course.slug])
    today = timezone.localdate()
    rows = Enrollment.objects.filter(course=course, learner__username__startswith="demo")
    assert rows.exists()
    for row in rows.select_related("learner__profile__department"):
        assert row.due_date is not None
        assert timezone.localdate(row.enrolled_at) < row.due_date, row
        if row.completed_at:
            assert row.enrolled_at <= row.completed_at <= timezone.now()
    due_dates = {r.due_date for r in rows}
    assert sum(d > today for d in due_dates) >= 3  # most in the future
    assert [slug for slug, (_, days) in DEMO_DUE.items() if days < 0] == ["customer-service"]
    late = rows.filter(learner__profile__department__slug="customer-service")
    assert {r.due_date for r in late} == {today - datetime.timedelta(days=5)}
    # The audit trail says they were assigned then, not today.
    assigned = AuditEvent.objects.filter(course=course, action=AuditEvent.Action.ASSIGNED)
    assert assigned.exists() and all(timezone.localdate(e.at) < today for e in assigned)
