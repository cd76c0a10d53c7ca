"""Reading course datasets (CSV `text,label`, UTF-8) with errors a person can act on."""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass

MAX_CSV_BYTES = 50 * 1024 * 1024


class DatasetError(ValueError):
    """A dataset that cannot be used; the message names the file and, where known, the row."""


@dataclass(frozen=True)
class ParsedDataset:
    train: list[tuple[str, str]]
    heldout: list[tuple[str, str]]
    labels: list[str]

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for split, rows in (("train", self.train), ("heldout", self.heldout)):
            for text, label in rows:
                digest.update(f"{split}\x1f{text}\x1f{label}\x1e".encode())
        return digest.hexdigest()


def parse_csv(data: bytes, *, name: str) -> list[tuple[str, str]]:
    """Parse one split; every problem names the file and the CSV line."""
    if len(data) > MAX_CSV_BYTES:
        raise DatasetError(f"{name}: larger than {MAX_CSV_BYTES // 1024 // 1024} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{name}: not UTF-8 text (byte {exc.start}); save the file as UTF-8 CSV"
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in ("text", "label") if c not in columns]
    if missing:
        raise DatasetError(
            f"{name}: missing column(s) {', '.join(missing)}; the header must be 'text,label' "
            f"(found: {', '.join(columns) or 'nothing'})"
        )
    rows: list[tuple[str, str]] = []
    try:
        for record in reader:
            row_text = (record.get("text") or "").strip()
            label = (record.get("label") or "").strip()
            if not row_text:
                raise DatasetError(f"{name}: line {reader.line_num}: empty text")
            if not label:
                raise DatasetError(f"{name}: line {reader.line_num}: empty label")
            rows.append((row_text, label))
    except csv.Error as exc:
        raise DatasetError(f"{name}: line {reader.line_num}: {exc}") from None
    if not rows:
        raise DatasetError(f"{name}: no rows")
    return rows


def parse_dataset(*, train: bytes, heldout: bytes, train_name: str = "train.csv",
                  heldout_name: str = "test.csv") -> ParsedDataset:  # fmt: skip
    train_rows = parse_csv(train, name=train_name)
    heldout_rows = parse_csv(heldout, name=heldout_name)
    train_labels = Counter(label for _, label in train_rows)
    if len(train_labels) < 2:
        only = next(iter(train_labels))
        raise DatasetError(
            f"{train_name}: only one label ('{only}'); a classifier needs at least two"
        )
    unseen = sorted({label for _, label in heldout_rows} - train_labels.keys())
    if unseen:
        raise DatasetError(
            f"{heldout_name}: label(s) never seen in {train_name}: {', '.join(unseen[:10])}"
            + (" …" if len(unseen) > 10 else "")
        )
    return ParsedDataset(train=train_rows, heldout=heldout_rows, labels=sorted(train_labels))
