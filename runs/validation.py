"""Lab validation: a lab's reference solution must pass; its starter code and every ablation
(the reference without the lab's idea) must not.

Each runs through the real pipeline (job folder, sandbox, engine, grader) in this
process rather than on a worker, so the wall times are what a learner waits for
on this machine. `manage.py validate_course` prints the table: one row per run,
with the floors and each class's recall, so a calibration can be read off it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from grading.models import Grade
from labs.models import Lab, Submission
from labs.selectors import VERDICT_WRONG, validation_verdict
from labs.services.submissions import lab_validation_runs
from runs.pipeline import submission_run

VALIDATOR = "academy-validator"
HEADER = [
    "lab",
    "run",
    "score",
    "passes",
    "metric",
    "floors",
    "recall per class",
    "wall",
    "device",
    "verdict",
]


@dataclass(frozen=True)
class ValidationRun:
    lab: Lab
    run: Submission
    grade: Grade | None
    wall_seconds: float

    @property
    def variant(self) -> str:
        return f"ablation {self.run.ablation}" if self.run.ablation else self.run.validation_of

    @property
    def passed(self) -> bool:
        return bool(self.grade and self.grade.passed)

    @property
    def as_expected(self) -> bool:
        """The reference passes; the starter and every ablation do not."""
        return validation_verdict(self.run.validation_of, passed=self.passed) != VERDICT_WRONG


def labs_in_order() -> QuerySet[Lab]:
    return Lab.objects.select_related("module__course", "dataset").order_by(
        "module__course__slug", "module__stage__position", "module__position"
    )


def validate_labs(
    labs: Iterable[Lab], *, log: Callable[[str], None], references_only: bool = False
) -> tuple[list[list[str]], int]:
    """Run each lab's reference, starter and ablations (or its reference only) here;
    (table rows, labs that failed)."""
    validator, _ = get_user_model().objects.get_or_create(
        username=VALIDATOR, defaults={"is_active": False, "first_name": "Lab validator"}
    )
    rows: list[list[str]] = []
    failures = 0
    for lab in labs:
        runs = lab_validation_runs(lab=lab, by=validator, references_only=references_only)
        results = [_validation_run(lab, run, log) for run in runs]
        failures += not all(result.as_expected for result in results)
        rows.extend(_row(result) for result in results)
    return rows, failures


def _validation_run(lab: Lab, run: Submission, log: Callable[[str], None]) -> ValidationRun:
    started = time.monotonic()
    submission_run(submission_id=run.pk, worker="validate_course")
    run.refresh_from_db()
    grade = getattr(run, "grade", None) if run.status == Submission.Status.GRADED else None
    result = ValidationRun(lab=lab, run=run, grade=grade, wall_seconds=time.monotonic() - started)
    outcome = f"{grade.score:.1f} ({_metric(grade)})" if grade else run.error_message[:160]
    log(f"  {lab.module.slug} {result.variant}: {run.status} {outcome}")
    return result


def _row(result: ValidationRun) -> list[str]:
    grade = result.grade
    return [
        result.lab.module.slug,
        result.variant,
        f"{grade.score:.1f}" if grade else result.run.status,
        "yes" if result.passed else "no",
        _metric(grade),
        _floors(grade),
        _recalls(grade),
        f"{result.wall_seconds:.0f} s",
        f"{result.run.device or '?'} {result.run.training_precision}".strip(),
        "ok" if result.as_expected else "FAIL",
    ]


def write_table(rows: list[list[str]], write: Callable[[str], None]) -> None:
    write("| " + " | ".join(HEADER) + " |")
    write("|" + "---|" * len(HEADER))
    for row in rows:
        write("| " + " | ".join(row) + " |")


def _metric(grade: Grade | None) -> str:
    return f"{grade.metric} {grade.metric_value:.3f}" if grade else "—"


def _floors(grade: Grade | None) -> str:
    if grade is None or not grade.floors:
        return "—"
    return ", ".join(_floor(floor) for floor in grade.floors)


def _floor(floor: dict[str, Any]) -> str:
    """'class_recall (negative) 0.006 < 0.3'."""
    which = f" ({floor['label']})" if floor["label"] else ""
    verdict = "≥" if floor["met"] else "<"
    return f"{floor['floor']}{which} {floor['actual']:.3f} {verdict} {floor['required']:g}"


def _recalls(grade: Grade | None) -> str:
    if grade is None:
        return "—"
    per_class = grade.metrics.get("per_class", [])
    if len(per_class) > 6:  # many-class labs: the worst three say more than 151 numbers
        worst = sorted(per_class, key=lambda row: row["recall"])[:3]
        return "lowest: " + ", ".join(f"{row['label']} {row['recall']:.2f}" for row in worst)
    return ", ".join(f"{row['label']} {row['recall']:.3f}" for row in per_class)
