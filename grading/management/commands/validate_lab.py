from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from labs.models import Lab, Submission
from labs.services import submission_run

VALIDATOR = "academy-validator"


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
        labs = Lab.objects.select_related("module__course", "dataset").order_by(
            "module__course__slug", "module__stage__position", "module__position"
        )
        if options["course"]:
            labs = labs.filter(module__course__slug=options["course"])
        if options["modules"]:
            labs = labs.filter(module__slug__in=options["modules"])
        if not labs:
            raise CommandError("No lab matches.")
        validator, _ = get_user_model().objects.get_or_create(
            username=VALIDATOR, defaults={"is_active": False, "first_name": "Lab validator"}
        )
        rows = []
        failures = 0
        for lab in labs:
            result = {}
            for role, code in (
                ("reference", lab.reference_solution),
                ("starter", lab.starter_code),
            ):
                run = Submission.objects.create(
                    learner=validator, lab=lab, code=code, validation_of=role
                )
                started = time.monotonic()
                submission_run(submission_id=run.pk, worker="validate_lab")
                run.refresh_from_db()
                grade = (
                    getattr(run, "grade", None) if run.status == Submission.Status.GRADED else None
                )
                result[role] = (run, grade, time.monotonic() - started)
                self.stderr.write(f"  {lab.module.slug} {role}: {run.status} "
                                  f"{f'{grade.score:.1f}' if grade else run.error_message[:120]}")  # fmt: skip
            ref_run, ref_grade, ref_wall = result["reference"]
            _, start_grade, start_wall = result["starter"]
            ok = bool(ref_grade and ref_grade.passed) and not (start_grade and start_grade.passed)
            failures += not ok
            rows.append([
                lab.module.slug,
                _score(ref_grade), _score(start_grade), f"{lab.pass_mark:.0f}",
                _metric(ref_grade), f"{ref_wall:.0f} s", f"{start_wall:.0f} s",
                ref_run.device or "?", "ok" if ok else "FAIL",
            ])  # fmt: skip
        header = ["lab", "reference score", "starter score", "pass mark", "reference metric",
                  "reference wall", "starter wall", "device", "verdict"]  # fmt: skip
        self.stdout.write("| " + " | ".join(header) + " |")
        self.stdout.write("|" + "---|" * len(header))
        for row in rows:
            self.stdout.write("| " + " | ".join(row) + " |")
        if failures:
            raise CommandError(f"{failures} lab(s) failed validation.")


def _score(grade: object) -> str:
    return f"{grade.score:.1f}" if grade else "—"


def _metric(grade: object) -> str:
    return f"{grade.metric} {grade.metric_value:.3f}" if grade else "—"
