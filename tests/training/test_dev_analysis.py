"""The engine's error analysis of the saved model on the dev split: the costliest mistakes
and the most frequent confusions, from the dev texts only."""

from __future__ import annotations

from pathlib import Path

import torch

from labs.training.data import read_csv
from labs.training.engine import DevPredictions, dev_analysis_event, train
from labs.training.events import ANALYSIS_CONFUSIONS, ANALYSIS_MISTAKES, ANALYSIS_TEXT_CHARS
from tests.training.conftest import MakeSpec
from tests.training.support import LABELS, hp_code


def predictions(logits: list[list[float]], gold: list[int]) -> DevPredictions:
    return DevPredictions(
        logits=torch.tensor(logits), labels=torch.tensor(gold), label_names=list(LABELS)
    )


def test_mistakes_come_costliest_first_and_pairs_by_count_with_their_worst_example():
    dev = predictions(
        [
            [5.0, 0.0, 0.0],  # pos, right
            [4.0, 0.0, 0.0],  # neg taken for pos, confidently: the costliest
            [1.0, 0.5, 0.0],  # neg taken for pos, barely
            [0.0, 0.0, 2.0],  # pos taken for neu
        ],
        [0, 1, 1, 0],
    )
    texts = ["right one", "sure but wrong", "unsure and wrong", "x" * 1000]
    event = dev_analysis_event(dev, texts)

    assert event["event"] == "dev_analysis"
    assert (event["dev_examples"], event["dev_mistakes"]) == (4, 3)
    assert [m["text"] for m in event["mistakes"]] == [
        "sure but wrong",
        "x" * ANALYSIS_TEXT_CHARS,
        "unsure and wrong",
    ]
    first = event["mistakes"][0]
    assert (first["label"], first["predicted"]) == ("neg", "pos")
    assert abs(first["confidence"] - torch.tensor([4.0, 0, 0]).softmax(0)[0].item()) < 1e-3
    losses = [m["loss"] for m in event["mistakes"]]
    assert losses == sorted(losses, reverse=True)
    assert event["confusions"] == [
        {"label": "neg", "predicted": "pos", "count": 2, "example": "sure but wrong"},
        {"label": "pos", "predicted": "neu", "count": 1, "example": "x" * ANALYSIS_TEXT_CHARS},
    ]


def test_a_model_that_is_always_right_reports_no_mistakes():
    event = dev_analysis_event(predictions([[3.0, 0, 0], [0, 3.0, 0]], [0, 1]), ["a", "b"])
    assert (event["mistakes"], event["confusions"], event["dev_mistakes"]) == ([], [], 0)


def test_a_run_reports_the_saved_models_dev_mistakes_before_done_from_dev_texts_only(
    make_spec: MakeSpec,
) -> None:
    # One epoch at a rate that leaves the tiny model far from perfect, so there are mistakes.
    spec = make_spec(hp_code(epochs=1, learning_rate=1e-5))
    events: list[dict] = []
    train(spec, on_event=events.append)

    kinds = [e["event"] for e in events]
    assert kinds[-2:] == ["dev_analysis", "done"]
    analysis = events[-2]
    dev_texts = {text for text, _ in read_csv(spec.dev_file)}
    train_texts = {text for text, _ in read_csv(spec.train_file)} - dev_texts
    assert analysis["dev_examples"] == len(read_csv(spec.dev_file))
    assert 0 < len(analysis["mistakes"]) <= ANALYSIS_MISTAKES
    assert len(analysis["confusions"]) <= ANALYSIS_CONFUSIONS
    for mistake in analysis["mistakes"]:
        assert mistake["text"] in dev_texts and mistake["text"] not in train_texts
        assert mistake["label"] != mistake["predicted"]
        assert {mistake["label"], mistake["predicted"]} <= set(LABELS)
        assert 0 <= mistake["confidence"] <= 1
    assert sum(c["count"] for c in analysis["confusions"]) <= analysis["dev_mistakes"]
    assert Path(spec.output_dir, "model.safetensors").is_file()
