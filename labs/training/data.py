"""Labelled-text CSV files and deterministic stratified sampling.

Pure functions on `(text, label)` rows, stdlib only, so the Django side can
use them to parse uploads, write job folders and carve a dev split and
training subsets without importing torch.
Every sampler takes a `seed` and gives the same answer for the same input
rows (in the same order) and seed, on any machine.
"""

from __future__ import annotations

import csv
import io
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

Row = tuple[str, str]
COLUMNS = ("text", "label")
# Example.label's column length (a test holds them equal).
MAX_LABEL_CHARS = 120


class DataError(ValueError):
    """A dataset file or a sampling request is unusable."""


# ---------------------------------------------------------------- the CSV format
#
# One `text,label` format for every copy of a dataset: an instructor's upload and
# a course folder (read by labs.datasets), the job folder's train/dev files (written
# by the worker, read by the engine in the sandbox) and a course export. Every reader
# goes through `parse_csv` and every writer through `write_rows`, so no two copies
# disagree on a BOM, a header with spaces, quoting, line ends or an empty row.


def parse_csv(data: bytes, *, name: str) -> list[Row]:
    """The rows of a UTF-8 CSV whose header names (at least) `text` and `label`.

    Raises DataError, starting with `name` and giving the line where known, for
    bytes that are not UTF-8, a missing column, a record whose field count is not
    the header's, an empty text or label, a NUL, an over-long label, a broken CSV
    record, or a file without rows. Extra columns are allowed (in every record);
    header names and values are stripped of surrounding spaces.
    """
    try:
        # utf-8-sig: spreadsheets often save a byte-order mark we must not read as text.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{name}: not UTF-8 text (bad byte at offset {exc.start}); save the file as UTF-8 CSV"
        ) from None
    # skipinitialspace: `hello, "a, b"` reads as written, not as three fields.
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    rows: list[Row] = []
    start = 1  # the line the record being read starts on (an error's line)
    try:
        header = [column.strip() for column in next(reader, [])]
        missing = [column for column in COLUMNS if column not in header]
        if missing:
            raise DataError(
                f"{name}: missing column(s) {', '.join(missing)}; the header must be "
                f"'text,label' (found: {', '.join(header) or 'nothing'})"
            )
        text_at, label_at = header.index("text"), header.index("label")
        while True:
            start = reader.line_num + 1
            record = next(reader, None)
            if record is None:
                break
            if not record:  # a blank line, e.g. at the end of the file
                continue
            # A record with more fields than the header is a text with an unquoted comma:
            # read by position it would put part of the text in the label.
            if len(record) != len(header):
                raise DataError(
                    f"{name}: line {start}: {len(record)} fields where the header has "
                    f"{len(header)}; put a text that contains a comma in double quotes "
                    '("hello, world",ham)'
                )
            row_text, label = record[text_at].strip(), record[label_at].strip()
            if not row_text:
                raise DataError(f"{name}: line {start}: empty text")
            if not label:
                raise DataError(f"{name}: line {start}: empty label")
            if "\x00" in row_text or "\x00" in label:
                raise DataError(f"{name}: line {start}: a NUL character (\\x00) is not allowed")
            if len(label) > MAX_LABEL_CHARS:
                raise DataError(
                    f"{name}: line {start}: a label is at most {MAX_LABEL_CHARS} characters"
                )
            rows.append((row_text, label))
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise DataError(
                f"{name}: line {start}: a field is longer than {csv.field_size_limit():,} "
                "characters (is a closing double quote missing?)"
            ) from None
        raise DataError(f"{name}: line {start}: {exc}") from None
    if not rows:
        raise DataError(f"{name}: no rows")
    return rows


def write_rows(handle: TextIO, rows: Iterable[Row]) -> None:
    """Write the header and `rows` as CSV (RFC 4180: quoted where needed, CRLF line ends)."""
    writer = csv.writer(handle, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)


def read_csv(path: str | Path) -> list[Row]:
    """Read a `text,label` CSV file (see `parse_csv`); errors name the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}.") from exc
    return parse_csv(data, name=path.name)


def write_csv(path: str | Path, rows: Iterable[Row]) -> None:
    """Write rows as a `text,label` CSV that `read_csv` reads back unchanged."""
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        write_rows(handle, rows)


def label_counts(rows: Iterable[Row]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for _, label in rows:
        counts[label] += 1
    return dict(sorted(counts.items()))


def stratified_subset(rows: Sequence[Row], n: int, seed: int) -> list[Row]:
    """Pick `n` rows keeping the label proportions, in their original order.

    Every label gets at least one row when `n` is at least the number of
    labels; when it is smaller, the most frequent labels are kept. Asking for
    `n >= len(rows)` returns all rows.
    """
    if n < 1:
        raise DataError(f"a subset needs at least 1 row, got n={n}.")
    if n >= len(rows):
        return list(rows)
    chosen = _choose_per_label(rows, n, seed, keep_one_out=False)
    return [rows[i] for i in sorted(chosen)]


def stratified_split(
    rows: Sequence[Row], dev_fraction: float, seed: int
) -> tuple[list[Row], list[Row]]:
    """Split rows into (train, dev), with about `dev_fraction` of them in dev.

    Per label the proportions are kept; a label with two or more rows keeps
    at least one row on each side, and a label with a single row stays in
    train (a dev example of a label never trained on teaches nothing).
    Both parts keep the original row order.
    """
    if not 0.0 < dev_fraction < 1.0:
        raise DataError(f"dev_fraction must be between 0 and 1 (exclusive), got {dev_fraction}.")
    if len(rows) < 2:
        raise DataError(f"cannot split {len(rows)} row(s) into train and dev.")
    dev_size = min(max(1, round(len(rows) * dev_fraction)), len(rows) - 1)
    dev = _choose_per_label(rows, dev_size, seed, keep_one_out=True)
    train_rows = [row for i, row in enumerate(rows) if i not in dev]
    dev_rows = [rows[i] for i in sorted(dev)]
    return train_rows, dev_rows


def _choose_per_label(
    rows: Sequence[Row], total: int, seed: int, *, keep_one_out: bool
) -> set[int]:
    """Indices of `total` rows drawn per label; `keep_one_out` leaves >= 1 per label behind."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, (_, label) in enumerate(rows):
        by_label[label].append(index)
    counts = {label: len(indices) for label, indices in sorted(by_label.items())}
    caps = {label: count - 1 if keep_one_out else count for label, count in counts.items()}
    quotas = allocate(counts, total, caps)
    rng = random.Random(seed)
    chosen: set[int] = set()
    for label in sorted(by_label):
        chosen.update(rng.sample(by_label[label], quotas[label]))
    return chosen


def allocate(counts: dict[str, int], total: int, caps: dict[str, int]) -> dict[str, int]:
    """Share `total` among labels in proportion to `counts`, within `caps`.

    Largest-remainder rounding, with a floor of one per label while `total`
    allows it (the most frequent labels first). Ties break by label name so
    the answer never depends on dict order.
    """
    grand = sum(counts.values())
    total = min(total, sum(caps.values()))
    ideal = {label: total * count / grand for label, count in counts.items()}
    # Most frequent first; the name keeps equal counts in a stable order.
    by_size = sorted(counts, key=lambda label: (-counts[label], label))
    floors = {label: 0 for label in counts}
    for label in [lb for lb in by_size if caps[lb] > 0][:total]:
        floors[label] = 1
    shares = {lb: min(caps[lb], max(floors[lb], math.floor(ideal[lb]))) for lb in counts}
    while sum(shares.values()) < total:
        open_labels = [lb for lb in by_size if shares[lb] < caps[lb]]
        best = max(open_labels, key=lambda lb: (ideal[lb] - shares[lb], -by_size.index(lb)))
        shares[best] += 1
    while sum(shares.values()) > total:
        loose = [lb for lb in by_size if shares[lb] > floors[lb]]
        worst = min(loose, key=lambda lb: (ideal[lb] - shares[lb], by_size.index(lb)))
        shares[worst] -= 1
    return shares
