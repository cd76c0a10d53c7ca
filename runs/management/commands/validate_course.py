from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses.models import Course
from runs.validation import labs_in_order, validate_labs, write_table


class Command(BaseCommand):
    help = (
        "Validate a course's labs: run each reference solution, starter code and ablation "
        "through the real pipeline (sandbox, engine, grader) in this process and print one "
        "table, a row per run. Every reference must pass; no starter or ablation may."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("course", help="the course's slug, e.g. fine-tuning-at-work")
        parser.add_argument(
            "labs", nargs="*", help="only these lab modules (their slugs; default: every lab)"
        )
        parser.add_argument(
            "--references-only",
            action="store_true",
            help="run only each lab's reference solution (e.g. to compare two settings of "
            "the workers); the starter and ablations are not checked",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["course"]
        if not Course.objects.filter(slug=slug).exists():
            raise CommandError(f"No course with slug {slug!r}; import it first (import_course).")
        labs = labs_in_order().filter(module__course__slug=slug)
        if not labs:
            raise CommandError(f"Course {slug!r} has no labs.")
        if options["labs"]:
            unknown = sorted(
                set(options["labs"]) - set(labs.values_list("module__slug", flat=True))
            )
            if unknown:
                raise CommandError(f"Course {slug!r} has no lab {', '.join(unknown)}.")
            labs = labs.filter(module__slug__in=options["labs"])
        self.stderr.write(f"Validating {labs.count()} lab(s) of {slug}…")
        count = labs.count()
        rows, failures = validate_labs(
            labs, log=self.stderr.write, references_only=options["references_only"]
        )
        write_table(rows, self.stdout.write)
        if failures:
            raise CommandError(f"{failures} of {count} lab(s) failed validation.")
        self.stdout.write(f"All {count} lab(s) of {slug} validated.")
