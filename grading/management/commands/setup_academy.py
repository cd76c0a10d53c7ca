from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses.authoring.source import CourseFolderError
from courses.services import demo_accounts_create, roles_sync
from labs.services.authoring import course_folder_import


class Command(BaseCommand):
    help = (
        "Prepare an installation: roles (Instructor, HR), the shipped courses from "
        "courses/content/, and, in the embedded mode only, demo accounts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-demo", action="store_true", help="never create demo accounts")

    def handle(self, *args: object, **options: object) -> None:
        roles_sync()
        slugs = []
        content = settings.BASE_DIR / "courses" / "content"
        for folder in sorted(p.parent for p in content.glob("*/course.yaml")):
            try:
                report = course_folder_import(path=folder)
            except CourseFolderError as exc:
                raise CommandError(f"Shipped course failed to import: {exc}") from None
            slugs.append(report.course.slug)
            self.stdout.write(report.lines()[0])
        if options["no_demo"] or not settings.ACADEMY_DEMO_ACCOUNTS:
            return
        accounts = demo_accounts_create(course_slugs=slugs)
        from grading.reports.demo import demo_organisation_create

        staff = demo_organisation_create(course_slugs=slugs)
        if staff:
            self.stdout.write(
                f"Demo organisation: {staff} employees in 5 departments, with assignments "
                "due in the coming weeks (customer service's is overdue on purpose)."
            )
        if accounts:
            self.stdout.write(
                self.style.WARNING("\nDemo accounts (shown once; change them in /admin/):")
            )
            for account in accounts:
                self.stdout.write(
                    f"  {account.role:<10} username: {account.username:<11} password: {account.password}"
                )
            self.stdout.write("")
