from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet

from labs.models import Lab, Submission
from runs.pipeline import submission_run

VALIDATOR = "academy-validator"
HEADER = ["lab", "reference score", "starter score", "pass mark", "reference metric",
          "starter metric", "reference wall", "starter wall", "device", "verdict"]  # fmt: skip


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
            submission_run(submission_id=run.pk, worker="validate_lab")
            run.refresh_from_db()
            grade = getattr(run, "grade", None) if run.status == Submission.Status.GRADED else None
            result[role] = (run, grade, time.monotonic() - started)
            log(f"  {lab.module.slug} {role}: {run.status} "
                f"{f'{grade.score:.1f} ({_metric(grade)})' if grade else run.error_message[:160]}")  # fmt: skip
        ref_run, ref_grade, ref_wall = result["reference"]
        _, start_grade, start_wall = result["starter"]
        ok = bool(ref_grade and ref_grade.passed) and not (start_grade and start_grade.passed)
        failures += not ok
        rows.append([
            lab.module.slug,
            _score(ref_grade), _score(start_grade), f"{lab.pass_mark:.0f}",
            _metric(ref_grade), _metric(start_grade), f"{ref_wall:.0f} s", f"{start_wall:.0f} s",
            ref_run.device or "?", "ok" if ok else "FAIL",
        ])  # fmt: skip
    return rows, failures


def write_table(rows: list[list[str]], write: Callable[[str], None]) -> None:
    write("| " + " | ".join(HEADER) + " |")
    write("|" + "---|" * len(HEADER))
    for row in rows:
        write("| " + " | ".join(row) + " |")


class Command(BaseCommand):
    help = (
        "Run labs' reference solutions and starter code through the real pipeline (sandbox, "
        "engine, grader) in this process and print a table. The reference must pass; the "
        "starter must not."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("modules", nargs="*", help="lab module slugs (default: every lab)")
        parser.add_argument("--course", help="only the labs of this course")

    def handle(self, *args: object, **options: object) -> None:
        labs = labs_in_order()
        if options["course"]:
            labs = labs.filter(module__course__slug=options["course"])
        if options["modules"]:
            labs = labs.filter(module__slug__in=options["modules"])
        if not labs:
            raise CommandError("No lab matches.")
        rows, failures = validate_labs(labs, log=self.stderr.write)
        write_table(rows, self.stdout.write)
        if failures:
            raise CommandError(f"{failures} lab(s) failed validation.")


def _score(grade: object) -> str:
    return f"{grade.score:.1f}" if grade else "—"


def _metric(grade: object) -> str:
    return f"{grade.metric} {grade.metric_value:.3f}" if grade else "—"
