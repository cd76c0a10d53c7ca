"""`manage.py import_employees FILE [--apply]`: preview (default) or apply a directory CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from grading.reports.directory import (
    MAX_BYTES,
    DirectoryPlan,
    DirectoryRefused,
    directory_apply,
    directory_preview,
)


class Command(BaseCommand):
    help = (
        "Import the employee directory from a CSV (employee_id, name, email, department, "
        "manager_employee_id, active). Without --apply it only prints what would change."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--apply", action="store_true", help="make the changes")
        parser.add_argument(
            "--list", type=int, default=50, help="list at most this many people per kind of change"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from None
        try:
            plan = directory_apply(data) if options["apply"] else directory_preview(data)
        except DirectoryRefused as exc:
            raise CommandError(
                f"{path}:\n  " + "\n  ".join(exc.errors) + "\nNothing was imported."
            ) from None
        self._print(plan, limit=options["list"])
        if options["apply"]:
            self.stdout.write(self.style.SUCCESS(f"Applied: {plan.summary()}"))
        else:
            self.stdout.write(f"Preview: {plan.summary()}")
            if plan.changes:
                self.stdout.write("Nothing was changed; run again with --apply to import.")

    def _print(self, plan: DirectoryPlan, *, limit: int) -> None:
        def listed(title: str, lines: list[str]) -> None:
            if not lines:
                return
            self.stdout.write(f"{title} ({len(lines)}):")
            for line in lines[:limit]:
                self.stdout.write(f"  {line}")
            if len(lines) > limit:
                self.stdout.write(f"  … and {len(lines) - limit} more")

        listed("Departments created", plan.departments_created)
        listed(
            "Created",
            [
                f"{p.employee_id} {p.first_name} {p.last_name} <{p.email}> "
                + (
                    f"(links existing account {plan.linked[p.employee_id]})"
                    if p.employee_id in plan.linked
                    else f"username {plan.usernames[p.employee_id]}"
                )
                for p in plan.created
            ],
        )
        listed(
            "Updated",
            [
                f"{p.employee_id}: " + "; ".join(f"{k} {a!r} → {b!r}" for k, (a, b) in diff.items())
                for p, diff in plan.updated
            ],
        )
        listed("Deactivated", plan.deactivated)
