"""Reading course datasets (CSV `text,label`, UTF-8) with errors a person can act on."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from labs.training import data as training_data

MAX_CSV_BYTES = 50 * 1024 * 1024


class DatasetError(ValueError):
    """A dataset that cannot be used; the message names the file and, where known, the row."""


@dataclass(frozen=True)
class ParsedDataset:
    train: list[tuple[str, str]]
    heldout: list[tuple[str, str]]
    labels: list[str]
    # Optional: the dataset's own dev rows (dev.csv); empty when labs carve dev from train.
    dev: list[tuple[str, str]] = field(default_factory=list)

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        splits = [("train", self.train), ("heldout", self.heldout)]
        if self.dev:  # only when present, so datasets without one keep their hash
            splits.append(("dev", self.dev))
        for split, rows in splits:
            for text, label in rows:
                digest.update(f"{split}\x1f{text}\x1f{label}\x1e".encode())
        return digest.hexdigest()


def parse_csv(data: bytes, *, name: str) -> list[tuple[str, str]]:
    """Parse one split; every problem names the file and, where known, the CSV line.

    The format is the engine's (labs.training.data), so an upload that passes here
    is one the sandboxed engine reads back identically; only the size cap is an
    upload's alone.
    """
    if len(data) > MAX_CSV_BYTES:
        raise DatasetError(f"{name}: larger than {MAX_CSV_BYTES // 1024 // 1024} MB")
    try:
        return training_data.parse_csv(data, name=name)
    except training_data.DataError as exc:
        raise DatasetError(str(exc)) from None


def parse_dataset(
    *,
    train: bytes,
    heldout: bytes,
    dev: bytes | None = None,
    train_name: str = "train.csv",
    heldout_name: str = "test.csv",
    dev_name: str = "dev.csv",
) -> ParsedDataset:
    train_rows = parse_csv(train, name=train_name)
    heldout_rows = parse_csv(heldout, name=heldout_name)
    dev_rows = parse_csv(dev, name=dev_name) if dev is not None else []
    train_labels = Counter(label for _, label in train_rows)
    if len(train_labels) < 2:
        only = next(iter(train_labels))
        raise DatasetError(
            f"{train_name}: only one label ('{only}'); a classifier needs at least two"
        )
    for name, rows in ((heldout_name, heldout_rows), (dev_name, dev_rows)):
        unseen = sorted({label for _, label in rows} - train_labels.keys())
        if unseen:
            raise DatasetError(
                f"{name}: label(s) never seen in {train_name}: {', '.join(unseen[:10])}"
                + (" …" if len(unseen) > 10 else "")
            )
    heldout_texts = {text for text, _ in heldout_rows}
    leaked = sum(text in heldout_texts for text, _ in dev_rows)
    if leaked:
        # Dev is public (it goes into every job folder); a held-out text there leaks the test.
        raise DatasetError(f"{dev_name}: {leaked} row(s) repeat a text of {heldout_name}")
    return ParsedDataset(
        train=train_rows, heldout=heldout_rows, labels=sorted(train_labels), dev=dev_rows
    )
