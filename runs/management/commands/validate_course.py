from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from grading.management.commands.validate_lab import labs_in_order, validate_labs, write_table

from courses.models import Course


class Command(BaseCommand):
    help = (
        "Validate every lab of a course: run each reference solution and starter code through "
        "the real pipeline (sandbox, engine, grader) and print one table. Every reference "
        "must pass and every starter must not."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("course", help="the course's slug, e.g. fine-tuning-at-work")

    def handle(self, *args: object, **options: object) -> None:
        slug = options["course"]
        if not Course.objects.filter(slug=slug).exists():
            raise CommandError(f"No course with slug {slug!r}; import it first (import_course).")
        labs = labs_in_order().filter(module__course__slug=slug)
        if not labs:
            raise CommandError(f"Course {slug!r} has no labs.")
        self.stderr.write(f"Validating {labs.count()} lab(s) of {slug}…")
        rows, failures = validate_labs(labs, log=self.stderr.write)
        write_table(rows, self.stdout.write)
        if failures:
            raise CommandError(f"{failures} of {len(rows)} lab(s) failed validation.")
        self.stdout.write(f"All {len(rows)} lab(s) of {slug} validated.")
