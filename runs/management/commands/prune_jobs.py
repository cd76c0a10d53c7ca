from __future__ import annotations

import datetime
import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from runs.jobs import jobs_retention, jobs_tidy

UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_age(text: str) -> datetime.timedelta:
    """'30d', '12h' or '90m' as a duration; anything else is refused with the forms it takes."""
    match = re.fullmatch(r"(\d{1,5})([dhm])", text.strip())
    if not match:
        raise CommandError(f"--older-than {text!r}: give a number and a unit, e.g. 30d, 12h, 90m.")
    return datetime.timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = (
        "Tidy this worker's job folders: a graded run keeps only its checkpoint (for "
        "re-grading), until it ended longer ago than --older-than (default: "
        "ACADEMY_JOB_RETENTION_DAYS); a run that ended any other way keeps nothing. Runs still "
        "queued or running are never touched. A removed graded run can no longer be re-graded "
        "without training again. Workers do this after every run; the command is for a disk "
        "that must be freed now, or a machine whose worker is gone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", help="age, e.g. 30d, 12h or 90m")
        parser.add_argument("--dry-run", action="store_true", help="list, remove nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        age = parse_age(options["older_than"]) if options["older_than"] else jobs_retention()
        report = jobs_tidy(retention=age, dry_run=options["dry_run"])
        removed, trimmed = (
            ("Would remove", "trim") if options["dry_run"] else ("Removed", "trimmed")
        )
        megabytes = report.bytes_freed / 1024 / 1024
        self.stdout.write(
            f"{removed} {len(report.removed)} job folder(s) and {trimmed} {len(report.trimmed)} "
            f"to their checkpoint, {megabytes:.1f} MB; {report.kept_active} of active runs kept."
        )
