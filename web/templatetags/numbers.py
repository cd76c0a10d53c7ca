"""The app's number format in templates (academy/numbers.py): `{{ grade.score|score }}`.

A builtin of the template engine (settings.TEMPLATES), so every page has it without a
`{% load %}`: a score shown to a learner or to HR reads as the exports carry it, "59.6",
never "60" beside a pass mark of 60 that it does not reach.
"""

from __future__ import annotations

from django import template

from academy.numbers import score_text

register = template.Library()


@register.filter
def score(value: float | None) -> str:
    return score_text(value)
