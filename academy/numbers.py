"""The one number format of the app's pages, admin and exports.

Counts are grouped by thousands ("22,714,371", as humanize's `intcomma` writes them in
templates); scores are shown and exported to one decimal ("54.4"), so a page, the CSV and
the JSON never disagree about a learner's score; measured metrics to three ("0.735", as
the result panel's `floatformat:3`).
"""

from __future__ import annotations

SCORE_DECIMALS = 1


def score_value(value: float | None) -> float | None:
    """A score as exports carry it: rounded to SCORE_DECIMALS."""
    return None if value is None else round(value, SCORE_DECIMALS)


def score_text(value: float | None, *, missing: str = "—") -> str:
    """A score as pages and the admin show it: "54.4"."""
    return missing if value is None else f"{value:.{SCORE_DECIMALS}f}"


def metric_text(value: float | None, *, missing: str = "—") -> str:
    """A measured metric (accuracy, macro-F1) as pages and the admin show it: "0.735"."""
    return missing if value is None else f"{value:.3f}"


def count_text(value: float | None, *, missing: str = "—") -> str:
    """A count (or a rate, rounded to one) with its thousands grouped: "22,714,371"."""
    return missing if value is None else f"{round(value):,}"
