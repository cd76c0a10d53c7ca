"""The report's two charts as server-rendered SVG: readable without JavaScript, each with a
title, a description and (in the template) a data table as its text alternative.

Drawn from the report's own rows (DepartmentBar, Bucket), with the ids and data attributes
the page links its tables to; the generic line and bar charts of the learner pages are
academy/charts.py, which these share no drawing with."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from grading.reports.selectors import Bucket, DepartmentBar


def department_chart(bars: list[DepartmentBar], *, width: int = 420) -> SafeString:
    """Horizontal bars: completion rate per department, with counts at the end of each bar."""
    title = _("Completion rate by department")
    if not bars:
        empty = escape(_("%(title)s: nothing assigned.") % {"title": title})
        return mark_safe(f'<p class="muted chart-empty">{empty}</p>')  # noqa: S308
    row, label_w, value_w, top = 22, 170, 90, 8
    plot_w = width - label_w - value_w
    height = top * 2 + row * len(bars) + 18
    summary = "; ".join(
        _("%(name)s %(rate)s%% (%(completed)s of %(assigned)s)")
        % {"name": b.name, "rate": b.rate, "completed": b.completed, "assigned": b.assigned}
        for b in bars
    )
    parts = [
        f'<svg class="chart bar-chart" id="department-chart" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="department-chart-title department-chart-desc" '
        f'xmlns="http://www.w3.org/2000/svg" data-departments="{len(bars)}">',
        f'<title id="department-chart-title">{escape(title)}</title>',
        f'<desc id="department-chart-desc">{escape(summary)}</desc>',
    ]
    for tick in (0, 50, 100):
        x = label_w + plot_w * tick / 100
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" '
            f'y2="{height - 18}" stroke="#ddd"/>'
            f'<text class="tick" x="{x:.1f}" y="{height - 4}" text-anchor="middle" '
            f'font-size="13">{tick}%</text>'
        )
    for i, bar in enumerate(bars):
        y = top + i * row
        w = plot_w * bar.rate / 100
        name = bar.name if len(bar.name) <= 24 else bar.name[:23] + "…"
        of_text = _("%(completed)s of %(assigned)s") % {
            "completed": bar.completed,
            "assigned": bar.assigned,
        }
        parts.append(
            f'<g class="dept-bar" data-name="{escape(bar.name)}" data-rate="{bar.rate}">'
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="13">{escape(name)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{plot_w}" height="{row - 6}" fill="#eef1f5"/>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="#2f6fbd">'
            f"<title>{escape(bar.name)}: {bar.rate}% ({escape(of_text)})</title></rect>"
            f'<text x="{label_w + plot_w + 6}" y="{y + 15}" font-size="13">'
            f"{bar.rate}% · {bar.completed}/{bar.assigned}</text></g>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped


def timeline_chart(buckets: list[Bucket], *, width: int = 420, height: int = 200) -> SafeString:
    """Columns: completions per week (or month)."""
    title = _("Completions over time")
    if not buckets:
        empty = escape(_("%(title)s: no completions yet.") % {"title": title})
        return mark_safe(f'<p class="muted chart-empty">{empty}</p>')  # noqa: S308
    left, right, top, bottom = 36, 8, 10, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(b.completed for b in buckets) or 1
    slot = plot_w / len(buckets)
    total = sum(b.completed for b in buckets)
    summary = _(
        "%(total)s completions from %(first)s to %(last)s; busiest period %(busiest)s with "
        "%(peak)s."
    ) % {
        "total": total,
        "first": buckets[0].label,
        "last": buckets[-1].label,
        "busiest": max(buckets, key=lambda b: b.completed).label,
        "peak": peak,
    }
    parts = [
        f'<svg class="chart column-chart" id="timeline-chart" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="timeline-chart-title timeline-chart-desc" '
        f'xmlns="http://www.w3.org/2000/svg" data-total="{total}">',
        f'<title id="timeline-chart-title">{escape(title)}</title>',
        f'<desc id="timeline-chart-desc">{escape(summary)}</desc>',
    ]
    for tick in sorted({0, peak // 2, peak}):
        y = top + plot_h - plot_h * tick / peak
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="13">{tick}</text>'
        )
    label_every = max(1, len(buckets) // 8)
    for i, b in enumerate(buckets):
        h = plot_h * b.completed / peak
        x = left + i * slot
        parts.append(
            f'<rect x="{x + slot * 0.15:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{h:.1f}" fill="#3c9a5f"><title>{escape(b.label)}: {b.completed}</title></rect>'
        )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{height - 10}" text-anchor="middle" '
                f'font-size="13">{escape(b.label)}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped
