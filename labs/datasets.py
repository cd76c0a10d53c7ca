"""Reading course datasets (CSV `text,label`, UTF-8) with errors a person can act on."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter, defaultdict
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
    # What an author should look at but may mean (look-alike labels); not in the hash.
    warnings: tuple[str, ...] = field(default=(), compare=False)

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
    seen = {_comparable(text) for text, _ in train_rows}
    leaked = [text for text, _ in heldout_rows if _comparable(text) in seen]
    if leaked:
        example = leaked[0] if len(leaked[0]) <= 60 else leaked[0][:57] + "…"
        raise DatasetError(
            f"{heldout_name}: {len(leaked)} held-out row(s) also appear in {train_name} "
            f"(e.g. {example!r}); a model that saw them in training is graded on what it "
            "memorised: remove them from one of the files"
        )
    heldout_texts = {_comparable(text) for text, _ in heldout_rows}
    dev_leaked = sum(_comparable(text) in heldout_texts for text, _ in dev_rows)
    if dev_leaked:
        # Dev is public (it goes into every job folder); a held-out text there leaks the test.
        raise DatasetError(f"{dev_name}: {dev_leaked} row(s) repeat a text of {heldout_name}")
    labels = sorted(train_labels)
    return ParsedDataset(
        train=train_rows,
        heldout=heldout_rows,
        labels=labels,
        dev=dev_rows,
        warnings=tuple(_look_alikes(labels, name=train_name)),
    )


def _comparable(text: str) -> str:
    """A text as an uncased model reads it: NFKC, casefolded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _look_alikes(labels: list[str], *, name: str) -> list[str]:
    """Labels that differ only in case, width, spaces or invisible characters.

    They are separate classes to the grader, which is rarely what the author meant."""
    groups: dict[str, list[str]] = defaultdict(list)
    for label in labels:
        visible = "".join(c for c in label if unicodedata.category(c) not in ("Cf", "Cc"))
        groups[re.sub(r"\s+", "", _comparable(visible))].append(label)
    return [
        f"{name}: labels {', '.join(repr(label) for label in group)} look alike but are "
        "separate classes; spell each class one way"
        for group in groups.values()
        if len(group) > 1
    ]
