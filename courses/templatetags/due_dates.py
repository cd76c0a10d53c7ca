"""The due-date rule for templates: `{% load due_dates %}` … `{% if enrollment|overdue %}`.

No date argument on purpose: inside `{% if %}` a missing context variable would
quietly make every enrollment "not overdue"; today's local date cannot go missing.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from courses.due_dates import is_overdue

register = template.Library()


@register.filter
def overdue(enrollment: Any) -> bool:
    """True where `courses.due_dates` calls this enrollment overdue today (local time)."""
    return is_overdue(
        due_date=enrollment.due_date,
        completed_at=enrollment.completed_at,
        today=timezone.localdate(),
    )
