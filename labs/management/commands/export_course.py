from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses.models import Course
from labs.exporting import LabExportError, course_folder_export


class Command(BaseCommand):
    help = (
        "Write a course from the database to a course folder (course.yaml, stage folders, "
        "module files, lab code, datasets) that import_course reads back unchanged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("course", help="the course slug")
        parser.add_argument("folder", help="a new or empty folder to write into")

    def handle(self, *args: object, **options: object) -> None:
        try:
            course = Course.objects.get(slug=options["course"])
        except Course.DoesNotExist:
            raise CommandError(f"No course with slug '{options['course']}'.") from None
        try:
            written = course_folder_export(course=course, dest=Path(str(options["folder"])))
        except (FileExistsError, LabExportError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Wrote course '{course.slug}' to {options['folder']}: {len(written)} files."
        )
