"""Labelled-text CSV files and deterministic stratified sampling.

Pure functions on `(text, label)` rows, stdlib only, so the Django side can
use them to carve a dev split and training subsets without importing torch.
Every sampler takes a `seed` and gives the same answer for the same input
rows (in the same order) and seed, on any machine.
"""

from __future__ import annotations

import csv
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

Row = tuple[str, str]
COLUMNS = ("text", "label")


class DataError(ValueError):
    """A dataset file or a sampling request is unusable."""


def read_csv(path: str | Path) -> list[Row]:
    """Read a UTF-8 CSV with a header naming (at least) `text` and `label`.

    Raises DataError naming the file and row for a missing column, bytes that
    are not UTF-8, or an empty text or label. Extra columns are ignored.
    """
    path = Path(path)
    try:
        # utf-8-sig: spreadsheets often save a byte-order mark we must not read as text.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _read_rows(csv.DictReader(handle), path)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path.name} is not valid UTF-8 (bad byte at offset {exc.start})."
        ) from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}.") from exc
    except csv.Error as exc:
        raise DataError(f"{path.name} is not a readable CSV file: {exc}.") from exc


def _read_rows(reader: csv.DictReader[str], path: Path) -> list[Row]:
    header = reader.fieldnames or []
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise DataError(
            f"{path.name} has no {' or '.join(missing)} column "
            f"(header is {','.join(header) or 'empty'}; expected text,label)."
        )
    rows: list[Row] = []
    # Row 1 is the header, so data rows start at 2 as in a spreadsheet.
    for number, record in enumerate(reader, start=2):
        text, label = (record["text"] or "").strip(), (record["label"] or "").strip()
        if not text:
            raise DataError(f"{path.name} row {number} has an empty text.")
        if not label:
            raise DataError(f"{path.name} row {number} has an empty label.")
        rows.append((text, label))
    return rows


def write_csv(path: str | Path, rows: Iterable[Row]) -> None:
    """Write rows as a `text,label` CSV that `read_csv` reads back unchanged."""
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


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
