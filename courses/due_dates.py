"""When an enrollment is overdue or due soon: the rule, written once for SQL and for Python.

An enrollment is open until it is completed. An open enrollment with a due
date is *overdue* from the day after its due date (due today is not late
yet), and *due soon* from `days` days before its due date up to and
including the due date itself. A completed enrollment is never overdue,
however late it was completed; one without a due date never is either.

Each rule is a `DueWindow`, a range of due dates over open enrollments, and
the window alone turns into a queryset filter (`q()`: the HR report's status
column and counts, the department bars, the reminders) and into a Python
test (`contains()`: the learner's pages, through the `due_dates` template
filter), so the two cannot drift apart; tests/courses/test_due_dates.py
pins both at the edges against each other.

The rule lives here, beside `Enrollment`, because every layer above reads it:
the courses' own pages, grading's reports and reminders, and the web pages.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import BooleanField, ExpressionWrapper, Q


@dataclass(frozen=True)
class DueWindow:
    """Open enrollments whose due date is on or after `first` and before `until`.

    None leaves that side unbounded; an enrollment without a due date is in no window.
    """

    first: datetime.date | None
    until: datetime.date | None

    def q(self, prefix: str = "") -> Q:
        """The window as a filter on Enrollment (from a related model: `prefix`, e.g. "enrollments__")."""
        condition = Q(**{f"{prefix}completed_at__isnull": True, f"{prefix}due_date__isnull": False})
        if self.first is not None:
            condition &= Q(**{f"{prefix}due_date__gte": self.first})
        if self.until is not None:
            condition &= Q(**{f"{prefix}due_date__lt": self.until})
        return condition

    def contains(
        self, *, due_date: datetime.date | None, completed_at: datetime.datetime | None
    ) -> bool:
        """The same window tested on one enrollment's fields."""
        return (
            completed_at is None
            and due_date is not None
            and (self.first is None or due_date >= self.first)
            and (self.until is None or due_date < self.until)
        )


def overdue_window(today: datetime.date) -> DueWindow:
    return DueWindow(first=None, until=today)


def due_soon_window(today: datetime.date, *, days: int) -> DueWindow:
    if days < 0:
        raise ValueError(f"'due soon' needs a number of days of 0 or more, got {days}.")
    return DueWindow(first=today, until=today + datetime.timedelta(days=days + 1))


def overdue_q(today: datetime.date, prefix: str = "") -> Q:
    return overdue_window(today).q(prefix)


def due_soon_q(today: datetime.date, *, days: int, prefix: str = "") -> Q:
    return due_soon_window(today, days=days).q(prefix)


def overdue_flag(today: datetime.date) -> ExpressionWrapper:
    """True/False per row, for `.annotate(...)` or `.values(...)`."""
    return ExpressionWrapper(overdue_q(today), output_field=BooleanField())


def is_overdue(
    *,
    due_date: datetime.date | None,
    completed_at: datetime.datetime | None,
    today: datetime.date,
) -> bool:
    return overdue_window(today).contains(due_date=due_date, completed_at=completed_at)


def is_due_soon(
    *,
    due_date: datetime.date | None,
    completed_at: datetime.datetime | None,
    today: datetime.date,
    days: int,
) -> bool:
    return due_soon_window(today, days=days).contains(due_date=due_date, completed_at=completed_at)
