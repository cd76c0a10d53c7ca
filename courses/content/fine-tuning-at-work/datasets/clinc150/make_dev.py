"""Build this dataset's dev.csv from CLINC150's validation rows.

    python make_dev.py path/to/oos-eval/data/data_full.json

The source is the `val` (150 intents x 20) and `oos_val` (100) lists of
`data/data_full.json` in https://github.com/clinc/oos-eval (CC BY 3.0). The rows
get the same cleaning as train.csv and test.csv (see SOURCE.md, "Processing"):
whitespace stripped and line breaks made spaces, empty texts dropped, duplicates
by case- and whitespace-folded text collapsed; then any row whose folded text is
also in test.csv or train.csv is dropped, so dev is disjoint from both. It keeps
the first 10 rows of each intent in source order and every out-of-scope row: the
capstone evaluates dev after every epoch, and 1,600 rows cost a fraction of an
epoch where the whole 3,100 would add about a quarter to every run.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
PER_INTENT = 10
SPACES = re.compile(r"\s+")
LINE_BREAK = re.compile(r"[ \t]*[\r\n]+[ \t]*")


def clean(text: str) -> str:
    return LINE_BREAK.sub(" ", text.strip())


def key(text: str) -> str:
    return SPACES.sub(" ", text).lower()


def existing_keys(name: str) -> set[str]:
    with (HERE / name).open(encoding="utf-8", newline="") as f:
        return {key(row["text"]) for row in csv.DictReader(f)}


def build(source: dict[str, list[list[str]]]) -> list[tuple[str, str]]:
    taken = existing_keys("test.csv") | existing_keys("train.csv")
    kept: list[tuple[str, str]] = []
    per_label: Counter[str] = Counter()
    seen: set[str] = set()
    for text, intent in source["val"] + source["oos_val"]:
        text = clean(text)
        label = "out_of_scope" if intent == "oos" else intent
        k = key(text)
        if not text or k in seen or k in taken:
            continue
        seen.add(k)
        if label != "out_of_scope" and per_label[label] >= PER_INTENT:
            continue
        per_label[label] += 1
        kept.append((text, label))
    return kept


def main(path: str) -> None:
    rows = build(json.loads(Path(path).read_text(encoding="utf-8")))
    with (HERE / "dev.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    counts = Counter(label for _, label in rows)
    print(f"dev.csv: {len(rows)} rows, {len(counts)} labels, {counts['out_of_scope']} out of scope")


if __name__ == "__main__":
    main(sys.argv[1])
