"""The claim that matters: with default hooks the real MiniLM learns a course dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from labs.training.base_models import resolve_base_model
from labs.training.data import read_csv, stratified_split, stratified_subset, write_csv
from labs.training.engine import train
from labs.training.spec import RunSpec

DATASET = (
    Path(__file__).resolve().parents[2]
    / "courses/content/fine-tuning-at-work/datasets/twitter-financial-sentiment/train.csv"
)


@pytest.mark.slow
def test_minilm_fine_tunes_on_twitter_financial_sentiment(tmp_path: Path) -> None:
    # 300 examples: 240 to train on (15 steps of 16 per epoch), 60 to watch the dev loss.
    rows = stratified_subset(read_csv(DATASET), 300, seed=0)
    train_rows, dev_rows = stratified_split(rows, 0.2, seed=0)
    write_csv(tmp_path / "train.csv", train_rows)
    write_csv(tmp_path / "dev.csv", dev_rows)
    (tmp_path / "solution.py").write_text(
        "HYPERPARAMETERS = {'epochs': 2, 'learning_rate': 2e-4, 'batch_size': 16}\n"
    )
    spec = RunSpec(
        base_model=resolve_base_model("minilm-l6"),
        code_file=str(tmp_path / "solution.py"),
        train_file=str(tmp_path / "train.csv"),
        dev_file=str(tmp_path / "dev.csv"),
        labels=sorted({label for _, label in rows}),
        output_dir=str(tmp_path / "checkpoint"),
    )
    events: list[dict] = []
    train(spec, on_event=events.append)

    first, second = (e for e in events if e["event"] == "epoch")
    # Falling, not by a set margin: 300 examples and two epochs move it a few per cent.
    assert second["dev_loss"] < first["dev_loss"]
    assert second["train_loss"] < first["train_loss"]
    assert (tmp_path / "checkpoint" / "model.safetensors").is_file()
