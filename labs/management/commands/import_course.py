from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses.authoring.source import CourseFolderError
from labs.services.authoring import course_folder_import


class Command(BaseCommand):
    help = (
        "Create or update a course, its datasets and labs from its folder "
        "(idempotent; all or nothing)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="course folder containing course.yaml")

    def handle(self, *args: object, **options: object) -> None:
        try:
            report = course_folder_import(path=str(options["path"]))
        except CourseFolderError as exc:
            raise CommandError(f"Import failed, nothing was changed. {exc}") from None
        for line in report.lines():
            self.stdout.write(line)
