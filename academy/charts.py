"""Small server-rendered SVG charts: readable without JavaScript, with text alternatives.

Generic (series of points, labelled bars), so any page may draw with them: today a run's
loss curve and a dataset's label counts (web.selectors)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

Series = tuple[str, Sequence[tuple[float, float]], str]  # (name, points, css class)


# A nice tick step is one of these times a power of ten: one or two significant digits.
NICE_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)


def nice_step(span: float, count: int = 4, *, integer: bool = False) -> float:
    """The smallest nice step that covers `span` in at most `count` intervals (whole
    numbers only, for an axis of steps)."""
    if span <= 0:
        return 1.0
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in NICE_STEPS if m * power >= raw * (1 - 1e-9))
    return max(1.0, float(math.ceil(step))) if integer else step


def _ticks(low: float, high: float, count: int = 4, *, integer: bool = False) -> list[float]:
    """Ticks at multiples of a nice step from `low` to `high` (0, 0.1, 0.2; 0, 5, 10)."""
    if high <= low:
        return [low]
    step = nice_step(high - low, count, integer=integer)
    first = math.ceil(low / step - 1e-9)
    ticks = []
    i = first
    while i * step <= high * (1 + 1e-9):
        ticks.append(round(i * step, 10))
        i += 1
    return ticks


def _tick_text(value: float, step: float) -> str:
    """A tick written with just the decimals its step needs: 0.25, not 0.287."""
    decimals = 0
    while decimals < 6 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    return f"{value:,.{decimals}f}"


def _fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 560,
    height: int = 220,
    x_max: float | None = None,
    x_integer: bool = False,
    y_from_zero: bool = True,
) -> SafeString:
    """Lines over a shared x axis; `x_integer` for an axis of whole numbers (steps).
    `y_from_zero=False` fits the y axis to the data, so that curves close together (runs
    compared) stay apart."""
    points = [p for _, pts, _ in series for p in pts]
    if not points:
        empty = escape(_("%(title)s: no data yet.") % {"title": title})
        return mark_safe(f'<p class="muted chart-empty">{empty}</p>')  # noqa: S308
    left, right, top, bottom = 52, 12, 14, 34
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    x0, x1 = min(0.0, min(xs)), max(x_max or 0.0, max(xs))
    if y_from_zero:
        y0, y1 = min(0.0, min(ys)), max(ys) * 1.05 or 1.0
    else:
        margin = (max(ys) - min(ys)) * 0.05 or abs(max(ys)) * 0.05 or 1.0
        y0, y1 = min(ys) - margin, max(ys) + margin
    # The y axis ends on a nice tick, so its top label is a round number too.
    y_step = nice_step(y1 - y0)
    y1 = math.ceil(y1 / y_step - 1e-9) * y_step
    x_step = nice_step(x1 - x0, integer=x_integer)
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / ((x1 - x0) or 1) * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - y0) / ((y1 - y0) or 1) * plot_h

    parts = [
        f'<svg class="chart line-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in _ticks(y0, y1):
        y = sy(tick)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_tick_text(tick, y_step)}</text>'
        )
    for tick in _ticks(x0, x1, integer=x_integer):
        parts.append(
            f'<text class="tick" x="{sx(tick):.1f}" y="{height - bottom + 16}" text-anchor="middle">{_tick_text(tick, x_step)}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text class="axis-label" x="12" y="{top + plot_h / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.0f})">{escape(y_label)}</text>'
    )
    for name, pts, css in series:
        if not pts:
            continue
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts.append(
            f'<polyline class="series {escape(css)}" points="{path}"><title>{escape(name)}</title></polyline>'
        )
        if len(pts) <= 12:
            parts += [
                f'<circle class="series-dot {escape(css)}" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3"/>'
                for x, y in pts
            ]
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above


def bar_chart(
    rows: Sequence[tuple[str, float]], *, title: str, width: int = 560, bar: int = 16
) -> SafeString:
    """Horizontal bars, one per label (e.g. a label distribution)."""
    if not rows:
        empty = escape(_("%(title)s: no data.") % {"title": title})
        return mark_safe(f'<p class="muted">{empty}</p>')  # noqa: S308
    label_w, value_w = 210, 56
    peak = max(v for _, v in rows) or 1
    height = len(rows) * (bar + 4) + 8
    parts = [
        f'<svg class="chart bar-chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(rows):
        y = 4 + i * (bar + 4)
        w = (width - label_w - value_w) * value / peak
        short = label if len(label) <= 30 else label[:29] + "…"
        parts.append(
            f'<text class="bar-label" x="{label_w - 6}" y="{y + bar - 4}" text-anchor="end">{escape(short)}</text>'
        )
        parts.append(
            f'<rect class="bar" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar}"><title>{escape(label)}: {_fmt(value)}</title></rect>'
        )
        parts.append(
            f'<text class="bar-value" x="{label_w + w + 4:.1f}" y="{y + bar - 4}">{_fmt(value)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308
