"""CSV and JSON exports of exactly the rows the report's filters select, streamed.

The columns are stable and documented (docs/hr-reports.md): the fixed columns below
always come first, in this order, then one `lab:<course>/<module>` column per lab of the
courses in the export. Rows are read from the database in chunks (a server-side cursor
on PostgreSQL), so 100,000 rows never sit in memory.
"""

from __future__ import annotations

import csv
import json
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

from academy.numbers import score_text, score_value
from grading.reports.selectors import LabColumn, Row

FIXED_COLUMNS = [
    "employee_id",
    "username",
    "name",
    "email",
    "department",
    "manager",
    "course",
    "course_title",
    "assigned_on",
    "due_on",
    "status",
    "progress_percent",
    "modules_completed",
    "modules_required",
    "completed_on",
]
# Cells starting with one of these are formulas to a spreadsheet (OWASP's list: = + - @,
# tab and carriage return), also in their full-width forms, which spreadsheets read as the
# ASCII ones, and the small forms (U+FE62-FE6B); looked for after any leading spaces and
# invisible characters, which a spreadsheet skips too (" =1+1", "\u200b=1+1").
FORMULA_PREFIXES = (
    *("=", "+", "-", "@", "\t", "\r"),
    *("\uff1d", "\uff0b", "\uff0d", "\uff20"),
    *("\ufe66", "\ufe62", "\ufe63", "\ufe6b"),
)
CHUNK = 2000


def neutralise(value: str) -> str:
    """Make a text cell inert in Excel/LibreOffice: a leading quote shows the text as typed."""
    return "'" + value if _visible_start(value).startswith(FORMULA_PREFIXES) else value


def _visible_start(value: str) -> str:
    """`value` from its first character a spreadsheet does not skip: past spaces (any
    Unicode space but tab and CR, which are prefixes themselves) and invisible format
    characters (zero-width space, BOM, bidi marks)."""
    for index, char in enumerate(value):
        if char in "\t\r":
            return value[index:]
        if not (char.isspace() or unicodedata.category(char) == "Cf"):
            return value[index:]
    return ""


def _score(value: float | None) -> str:
    # One rounding rule for the CSV, the JSON and the pages (academy.numbers).
    return score_text(value, missing="")


def header(labs: list[LabColumn]) -> list[str]:
    return FIXED_COLUMNS + [lab.header for lab in labs]


def csv_cells(row: Row) -> list[str]:
    text = [
        row.employee_id,
        row.username,
        row.name,
        row.email,
        row.department,
        row.manager,
        row.course_slug,
        row.course_title,
    ]
    return [
        *(neutralise(cell) for cell in text),
        row.assigned.isoformat() if row.assigned else "",
        row.due.isoformat() if row.due else "",
        row.status,
        str(row.progress),
        str(row.modules_done),
        str(row.modules_required),
        row.completed.isoformat() if row.completed else "",
        *(_score(score) for score in row.lab_scores),
    ]


class _Echo:
    """csv.writer writes into this and gets the line back, so each row is yielded, not kept."""

    def write(self, value: str) -> str:
        return value


def csv_stream(rows: Iterable[Row], labs: list[LabColumn]) -> Iterator[str]:
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    # The BOM makes Excel read the file as UTF-8 (names with accents stay intact).
    yield "\ufeff" + writer.writerow(header(labs))
    batch: list[str] = []
    for row in rows:
        batch.append(writer.writerow(csv_cells(row)))
        if len(batch) >= 500:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def json_record(row: Row, labs: list[LabColumn]) -> dict[str, Any]:
    return {
        "employee_id": row.employee_id,
        "username": row.username,
        "name": row.name,
        "email": row.email,
        "department": row.department,
        "manager": row.manager,
        "course": row.course_slug,
        "course_title": row.course_title,
        "assigned_on": row.assigned.isoformat() if row.assigned else None,
        "due_on": row.due.isoformat() if row.due else None,
        "status": row.status,
        "progress_percent": row.progress,
        "modules_completed": row.modules_done,
        "modules_required": row.modules_required,
        "completed_on": row.completed.isoformat() if row.completed else None,
        "lab_scores": {
            lab.header.removeprefix("lab:"): score_value(score)
            for lab, score in zip(labs, row.lab_scores, strict=True)
        },
    }


def json_stream(rows: Iterable[Row], labs: list[LabColumn], meta: dict[str, Any]) -> Iterator[str]:
    """`{"meta": {...}, "columns": [...], "rows": [{...}, ...]}`, written as it is read."""
    yield '{"meta": ' + json.dumps(meta) + ', "columns": ' + json.dumps(header(labs))
    yield ', "rows": ['
    first = True
    for row in rows:
        yield ("" if first else ",") + "\n" + json.dumps(json_record(row, labs))
        first = False
    yield "\n]}\n"
