"""The fault trial record and its table; no Django, so bench/faults.py can print it."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass
class TrialRecord:
    fault: str
    trial: int
    submissions: int
    lost: int  # submissions that ended without a Grade
    duplicated: int  # extra Grades beyond one per submission
    recovered_s: float | None  # fault over → the affected run progressed again
    detail: str = ""


def fault_table(records: list[TrialRecord]) -> list[str]:
    """fault | trials | lost | duplicated | recovered-within p50 / max (s)."""
    lines = [
        f"{'fault':<34} {'trials':>6} {'lost':>5} {'dup':>5} {'recovered p50':>14} {'max (s)':>8}",
    ]
    for fault in dict.fromkeys(r.fault for r in records):
        rows = [r for r in records if r.fault == fault]
        times = [r.recovered_s for r in rows if r.recovered_s is not None]
        p50 = f"{statistics.median(times):.1f}" if times else "-"
        worst = f"{max(times):.1f}" if times else "-"
        lines.append(
            f"{fault:<34} {len(rows):>6} {sum(r.lost for r in rows):>5} "
            f"{sum(r.duplicated for r in rows):>5} {p50:>14} {worst:>8}"
        )
    return lines
