"""The one rule for grading a numeric knowledge-check answer."""

from __future__ import annotations

from courses.models import CheckQuestion


def numeric_is_right(question: CheckQuestion, given: float) -> bool:
    """Within the tolerance, inclusive; a hair of float slack so 0.1 + 0.2 counts as 0.3."""
    assert question.numeric_value is not None
    slack = 1e-9 * max(1.0, abs(question.numeric_value))
    return abs(given - question.numeric_value) <= (question.numeric_tolerance or 0.0) + slack
