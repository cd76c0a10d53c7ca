from __future__ import annotations

import datetime
import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from runs.jobs import jobs_prune

UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_age(text: str) -> datetime.timedelta:
    """'30d', '12h' or '90m' as a duration; anything else is refused with the forms it takes."""
    match = re.fullmatch(r"(\d{1,5})([dhm])", text.strip())
    if not match:
        raise CommandError(f"--older-than {text!r}: give a number and a unit, e.g. 30d, 12h, 90m.")
    return datetime.timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = (
        "Remove the job folders (code, data copies, checkpoints) of runs that ended before the "
        "given age. Runs still queued or running are never touched. A pruned graded run can no "
        "longer be re-graded without training again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", required=True, help="age, e.g. 30d, 12h or 90m")
        parser.add_argument("--dry-run", action="store_true", help="list, remove nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        age = parse_age(options["older_than"])
        report = jobs_prune(older_than=age, dry_run=options["dry_run"])
        verb = "Would remove" if options["dry_run"] else "Removed"
        megabytes = report.bytes_freed / 1024 / 1024
        self.stdout.write(
            f"{verb} {len(report.removed)} job folder(s), {megabytes:.1f} MB; "
            f"{report.kept_active} of active runs kept."
        )
