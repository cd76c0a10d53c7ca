"""Fixtures for the engine tests: a tiny BERT, a small easy dataset, spec builders.

Everything is real (real tokenizer, real model class, real files); the model
is tiny so that a full run takes about a second.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labs.training.data import write_csv
from labs.training.spec import RunSpec
from tests.training.support import LABELS, keyword_rows


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    from labs.training.tiny import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def keyword_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(train.csv, dev.csv): 90 and 30 rows, balanced over LABELS."""
    folder = tmp_path_factory.mktemp("keyword-data")
    rows = keyword_rows(120)
    write_csv(folder / "train.csv", rows[:90])
    write_csv(folder / "dev.csv", rows[90:])
    return folder / "train.csv", folder / "dev.csv"


MakeSpec = Callable[..., RunSpec]


@pytest.fixture
def make_spec(tmp_path: Path, tiny_model: str, keyword_data: tuple[Path, Path]) -> MakeSpec:
    """Write `code` as the learner's file and return a spec for a run on the tiny model."""
    counter = iter(range(1000))

    def build(code: str = "", **overrides: Any) -> RunSpec:
        job = tmp_path / f"job{next(counter)}"
        job.mkdir()
        (job / "solution.py").write_text(code, encoding="utf-8")
        train_file, dev_file = keyword_data
        fields: dict[str, Any] = {
            "base_model": tiny_model,
            "code_file": str(job / "solution.py"),
            "train_file": str(train_file),
            "dev_file": str(dev_file),
            "labels": LABELS,
            "output_dir": str(job / "checkpoint"),
            # One thread: results are bit-for-bit repeatable and a busy CI box is not oversubscribed.
            "threads": 1,
        }
        return RunSpec(**{**fields, **overrides})

    return build
