"""Reminder emails: due soon, overdue, weekly manager summary; each sent once per reason."""

from __future__ import annotations

import datetime

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.utils import timezone

from courses.models import Enrollment
from grading.models import ReminderSent
from grading.reports.services import enrollment_set_due_date, reminders_send
from tests.factories import DepartmentFactory
from tests.grading.reports_support import employee

TODAY = timezone.localdate()


def days(n: int) -> datetime.date:
    return TODAY + datetime.timedelta(days=n)


@pytest.fixture
def team(course):
    ops = DepartmentFactory(name="Ops", slug="ops")
    boss = employee("boss", "M-1", ops, first_name="Bea", last_name="Boss")
    soon = employee("soon", "T-1", ops, boss)
    late = employee("late", "T-2", ops, boss)
    later = employee("later", "T-3", ops, boss)
    Enrollment.objects.create(learner=soon, course=course, due_date=days(2))
    Enrollment.objects.create(learner=late, course=course, due_date=days(-4))
    Enrollment.objects.create(learner=later, course=course, due_date=days(20))
    return {"boss": boss, "soon": soon, "late": late, "later": later}


def test_learners_get_due_soon_and_overdue_emails_and_managers_a_summary(team):
    counts = reminders_send(today=TODAY)
    assert (counts.due_soon, counts.overdue, counts.manager_weekly) == (1, 1, 1)
    by_recipient = {m.to[0]: m for m in mail.outbox}
    assert set(by_recipient) == {"soon@example.com", "late@example.com", "boss@example.com"}
    assert "is due in 2 days" in by_recipient["soon@example.com"].subject
    assert "Overdue" in by_recipient["late@example.com"].subject
    assert "/courses/demo-course/" in by_recipient["late@example.com"].body
    summary = by_recipient["boss@example.com"]
    assert "1 overdue course" in summary.subject
    assert "4 days late" in summary.body and "soon" not in summary.body.split(":", 1)[1]


def test_running_the_job_again_sends_nothing_twice(team):
    reminders_send(today=TODAY)
    sent = len(mail.outbox)
    again = reminders_send(today=TODAY)
    assert (again.due_soon, again.overdue, again.manager_weekly) == (0, 0, 0)
    assert len(mail.outbox) == sent
    assert ReminderSent.objects.count() == 3
    # The next day "soon" is still due soon: the same reason, so no second email.
    next_day = reminders_send(today=TODAY + datetime.timedelta(days=1))
    assert (next_day.due_soon, next_day.overdue) == (0, 0)


def test_the_manager_summary_comes_again_the_next_week(team):
    reminders_send(today=TODAY)
    counts = reminders_send(today=TODAY + datetime.timedelta(days=7))
    assert counts.manager_weekly == 1
    # The learners' overdue emails are not repeated: one per reason.
    assert counts.overdue == 1  # "soon" is overdue by then: a new reason
    assert [m.to[0] for m in mail.outbox].count("late@example.com") == 1


def test_a_moved_due_date_is_a_new_reason_to_remind(team, hr):
    reminders_send(today=TODAY)
    enrollment = Enrollment.objects.get(learner=team["late"])
    enrollment_set_due_date(enrollment=enrollment, due_date=days(1), actor=hr)
    counts = reminders_send(today=TODAY)
    assert counts.due_soon == 1
    assert mail.outbox[-1].to == ["late@example.com"]


def test_finished_or_undated_enrollments_get_no_email(course):
    done = employee("done", "T-9", None)
    undated = employee("undated", "T-8", None)
    Enrollment.objects.create(
        learner=done, course=course, due_date=days(-1), completed_at=timezone.now()
    )
    Enrollment.objects.create(learner=undated, course=course, due_date=None)
    counts = reminders_send(today=TODAY)
    assert (counts.due_soon, counts.overdue, counts.manager_weekly) == (0, 0, 0)
    assert mail.outbox == []


def test_a_failed_send_is_counted_leaves_no_record_and_is_retried_next_run(team, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1  # nothing listens there
    counts = reminders_send(today=TODAY)
    assert (counts.due_soon, counts.overdue, counts.manager_weekly, counts.failed) == (0, 0, 0, 3)
    assert ReminderSent.objects.count() == 0
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    counts = reminders_send(today=TODAY)
    assert (counts.due_soon, counts.overdue, counts.manager_weekly) == (1, 1, 1)


def test_the_reminder_job_runs_from_celery_beat_and_prints_to_the_console_by_default():
    entry = django_settings.CELERY_BEAT_SCHEDULE["send-reminders"]
    assert entry["task"] == "grading.tasks.send_reminders"
    if django_settings.EMBEDDED:
        # pytest-django swaps in locmem for the tests; the setting itself is the console.
        from academy import settings as raw

        assert raw.EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend"


def test_the_celery_task_enrolls_new_department_members_then_reminds(course, hr):
    from grading.reports.services import assignment_create
    from runs.tasks import send_reminders

    ops = DepartmentFactory(name="Ops", slug="ops")
    assignment_create(course=course, due_date=days(1), actor=hr, departments=[ops])
    employee("joiner", "T-7", ops)
    send_reminders.apply()
    assert Enrollment.objects.filter(learner__username="joiner").exists()
    assert [m.to for m in mail.outbox] == [["joiner@example.com"]]
