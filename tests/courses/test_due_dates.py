"""The one "overdue" and "due soon" rule, pinned at its edges on the SQL and the Python side,
and every place that shows or counts it (report, bars, reminders, pages) agreeing with it."""

from __future__ import annotations

import datetime

import pytest
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from courses.due_dates import (
    due_soon_q,
    due_soon_window,
    is_due_soon,
    is_overdue,
    overdue_flag,
    overdue_q,
)
from courses.models import Enrollment
from tests.factories import CourseFactory, UserFactory

TODAY = datetime.date(2026, 3, 10)
SOON_DAYS = 3


def at(days: int) -> datetime.date:
    return TODAY + datetime.timedelta(days=days)


def moment(days: int) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(at(days), datetime.time(12)))


# (name, due in days or None, completed in days or None, overdue, due soon within 3 days)
EDGES = [
    ("no-due-date", None, None, False, False),
    ("due-long-ago", -400, None, True, False),
    ("due-yesterday", -1, None, True, False),
    ("due-today", 0, None, False, True),
    ("due-tomorrow", 1, None, False, True),
    ("due-on-the-last-soon-day", SOON_DAYS, None, False, True),
    ("due-the-day-after", SOON_DAYS + 1, None, False, False),
    ("completed-after-the-due-date", -5, -1, False, False),
    ("completed-before-the-due-date", -1, -3, False, False),
    ("completed-early-and-due-today", 0, -2, False, False),
    ("completed-without-a-due-date", None, -1, False, False),
]


@pytest.fixture
def edges(db) -> dict[str, Enrollment]:
    course = CourseFactory.create()
    rows = {}
    for name, due, completed, _, _ in EDGES:
        rows[name] = Enrollment.objects.create(
            learner=UserFactory.create(username=name),
            course=course,
            due_date=None if due is None else at(due),
            completed_at=None if completed is None else moment(completed),
        )
    return rows


@pytest.mark.parametrize(
    ("name", "due", "completed", "overdue", "soon"), EDGES, ids=[e[0] for e in EDGES]
)
def test_python_and_sql_agree_at_every_edge(edges, name, due, completed, overdue, soon):
    row = edges[name]
    fields = {"due_date": row.due_date, "completed_at": row.completed_at, "today": TODAY}
    assert is_overdue(**fields) is overdue
    assert is_due_soon(**fields, days=SOON_DAYS) is soon

    by_sql = Enrollment.objects.filter(pk=row.pk)
    assert by_sql.filter(overdue_q(TODAY)).exists() is overdue
    assert by_sql.filter(due_soon_q(TODAY, days=SOON_DAYS)).exists() is soon
    assert by_sql.annotate(late=overdue_flag(TODAY)).get().late is overdue


def test_the_rule_reaches_an_enrollment_from_a_related_model(edges):
    from django.contrib.auth import get_user_model

    late_learners = get_user_model().objects.filter(overdue_q(TODAY, prefix="enrollments__"))
    expected = {name for name, *_, overdue, _ in EDGES if overdue}
    assert set(late_learners.values_list("username", flat=True)) == expected


def test_due_soon_with_zero_days_is_due_today_only_and_negative_days_are_refused():
    assert due_soon_window(TODAY, days=0).contains(due_date=TODAY, completed_at=None)
    assert not due_soon_window(TODAY, days=0).contains(due_date=at(1), completed_at=None)
    with pytest.raises(ValueError, match="0 or more, got -1"):
        due_soon_window(TODAY, days=-1)


def test_the_hr_report_counts_the_bars_and_the_status_filter_use_the_rule(edges):
    from grading.reports.selectors import (
        ReportFilters,
        ReportScope,
        department_completion,
        enrollments_filtered,
        report_summary,
    )

    expected = {edges[name].pk for name, *_, overdue, _ in EDGES if overdue}
    everything = Enrollment.objects.all()
    assert report_summary(base=everything, today=TODAY).overdue == len(expected)
    assert sum(bar.overdue for bar in department_completion(base=everything, today=TODAY)) == len(
        expected
    )
    scope = ReportScope(user_id=0, is_hr=True, course_ids=None)
    late = enrollments_filtered(scope=scope, filters=ReportFilters(status="overdue"), today=TODAY)
    assert set(late.values_list("pk", flat=True)) == expected


def test_reminders_go_to_exactly_the_overdue_and_due_soon_learners(edges, settings):
    from grading.models import ReminderSent
    from grading.reports.services import reminders_send

    settings.ACADEMY_REMINDER_DAYS_BEFORE = SOON_DAYS
    reminders_send(today=TODAY)
    sent = set(ReminderSent.objects.values_list("reason", "recipient__username"))
    assert {u for reason, u in sent if reason == "overdue"} == {
        name for name, *_, overdue, _ in EDGES if overdue
    }
    assert {u for reason, u in sent if reason == "due_soon"} == {
        name for name, *_, soon in EDGES if soon
    }


def test_the_template_filter_is_the_rule_on_todays_date(db):
    template = Template("{% load due_dates %}{% if e|overdue %}late{% endif %}")
    today = timezone.localdate()
    for _, due, completed, overdue, _ in EDGES:
        enrollment = Enrollment(
            due_date=None if due is None else today + datetime.timedelta(days=due),
            completed_at=None if completed is None else timezone.now(),
        )
        assert (template.render(Context({"e": enrollment})) == "late") is overdue


def test_my_learning_and_the_transcript_mark_due_yesterday_late_but_not_due_today(db, client):
    learner = UserFactory.create(username="pat")
    today = timezone.localdate()
    late = Enrollment.objects.create(
        learner=learner,
        course=CourseFactory.create(title="Late course"),
        due_date=today - datetime.timedelta(days=1),
    )
    Enrollment.objects.create(
        learner=learner, course=CourseFactory.create(title="Due today course"), due_date=today
    )
    client.force_login(learner)

    page = client.get(reverse("courses:my-learning")).content.decode()
    assert page.count("Overdue: was due") == 1
    assert f"Overdue: was due {late.due_date:%-d %b %Y}" in page

    record = client.get(reverse("reports:transcript", args=[learner.pk])).content.decode()
    # Courses by title: the one "overdue" comes after the last course's heading, so it is its.
    assert record.count("<strong>overdue</strong>") == 1
    assert record.index("Due today course") < record.index("Late course")
    assert record.index("Late course") < record.index("<strong>overdue</strong>")
