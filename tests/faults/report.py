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


@dataclass
class ContainmentRecord:
    """One hostile run through the real pipeline, and whether it ended as it should."""

    attack: str
    trial: int
    expected: str  # the verdict the attack must get, e.g. "error, attempt used"
    seen: str  # what it got, in the same words
    held: bool  # seen == expected, and nothing else was harmed
    seconds: float
    detail: str = ""


def containment_table(records: list[ContainmentRecord]) -> list[str]:
    """attack | trials | held | expected verdict | wall p50 (s)."""
    lines = [f"{'attack':<44} {'trials':>6} {'held':>5}  {'expected':<34} {'p50 (s)':>7}"]
    for attack in dict.fromkeys(r.attack for r in records):
        rows = [r for r in records if r.attack == attack]
        p50 = statistics.median(r.seconds for r in rows)
        lines.append(
            f"{attack:<44} {len(rows):>6} {sum(r.held for r in rows):>5}  "
            f"{rows[0].expected:<34} {p50:>7.1f}"
        )
    return lines
