"""Lab validation: each lab's reference solution must pass and its starter code must not.

Both run through the real pipeline (job folder, sandbox, engine, grader) in this
process rather than on a worker, so the wall times are what a learner waits for
on this machine. `manage.py validate_course` prints the table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from grading.models import Grade
from labs.models import Lab, Submission
from runs.pipeline import submission_run

VALIDATOR = "academy-validator"
HEADER = [
    "lab",
    "reference score",
    "starter score",
    "pass mark",
    "reference metric",
    "starter metric",
    "reference wall",
    "starter wall",
    "device",
    "verdict",
]


def labs_in_order() -> QuerySet[Lab]:
    return Lab.objects.select_related("module__course", "dataset").order_by(
        "module__course__slug", "module__stage__position", "module__position"
    )


def validate_labs(
    labs: Iterable[Lab], *, log: Callable[[str], None]
) -> tuple[list[list[str]], int]:
    """Run each lab's reference and starter through the real pipeline here; (table rows, failures).

    The same path a learner's run takes (job folder, sandbox, engine, grader),
    in this process rather than on a worker, so the wall times are what a
    learner waits for on this machine.
    """
    validator, _ = get_user_model().objects.get_or_create(
        username=VALIDATOR, defaults={"is_active": False, "first_name": "Lab validator"}
    )
    rows = []
    failures = 0
    for lab in labs:
        result = {}
        for role, code in (("reference", lab.reference_solution), ("starter", lab.starter_code)):
            run = Submission.objects.create(
                learner=validator, lab=lab, code=code, validation_of=role
            )
            started = time.monotonic()
            submission_run(submission_id=run.pk, worker="validate_course")
            run.refresh_from_db()
            grade = getattr(run, "grade", None) if run.status == Submission.Status.GRADED else None
            result[role] = (run, grade, time.monotonic() - started)
            outcome = f"{grade.score:.1f} ({_metric(grade)})" if grade else run.error_message[:160]
            log(f"  {lab.module.slug} {role}: {run.status} {outcome}")
        ref_run, ref_grade, ref_wall = result["reference"]
        _, start_grade, start_wall = result["starter"]
        ok = bool(ref_grade and ref_grade.passed) and not (start_grade and start_grade.passed)
        failures += not ok
        rows.append(
            [
                lab.module.slug,
                _score(ref_grade),
                _score(start_grade),
                f"{lab.pass_mark:.0f}",
                _metric(ref_grade),
                _metric(start_grade),
                f"{ref_wall:.0f} s",
                f"{start_wall:.0f} s",
                ref_run.device or "?",
                "ok" if ok else "FAIL",
            ]
        )
    return rows, failures


def write_table(rows: list[list[str]], write: Callable[[str], None]) -> None:
    write("| " + " | ".join(HEADER) + " |")
    write("|" + "---|" * len(HEADER))
    for row in rows:
        write("| " + " | ".join(row) + " |")


def _score(grade: Grade | None) -> str:
    return f"{grade.score:.1f}" if grade else "—"


def _metric(grade: Grade | None) -> str:
    return f"{grade.metric} {grade.metric_value:.3f}" if grade else "—"
