"""LoRA-style adapters: merged into the base weights before saving; the trainable-share cap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labs.training.contract import LearnerCodeError
from labs.training.engine import train
from tests.training.conftest import MakeSpec
from tests.training.support import hp_code

# The lab's convention: a module with merge() returning the plain layer it wraps.
LORA = """
import math
import torch
from torch import nn


class LoRALinear(nn.Module):
    def __init__(self, base, rank=4, alpha=8):
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x):
        return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale

    def merge(self):
        with torch.no_grad():
            self.base.weight += (self.lora_b @ self.lora_a) * self.scale
        return self.base


def prepare_model(model):
    model.requires_grad_(False)
    for layer in model.bert.encoder.layer:
        attention = layer.attention.self
        attention.query = LoRALinear(attention.query)
        attention.value = LoRALinear(attention.value)
    model.classifier.requires_grad_(True)
    return model
"""


def run(spec: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    return train(spec, on_event=events.append), events


def saved_tensors(checkpoint: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(checkpoint / "model.safetensors"))


def test_lora_adapters_are_merged_so_the_checkpoint_has_exactly_the_base_tensors(
    make_spec: MakeSpec, tiny_model: str
) -> None:
    from safetensors.torch import load_file

    spec = make_spec(hp_code(epochs=2, learning_rate=5e-2) + LORA)
    result, events = run(spec)

    saved = saved_tensors(Path(spec.output_dir))
    base = load_file(str(Path(tiny_model) / "model.safetensors"))
    assert not [name for name in saved if "lora" in name]
    # The base model is a BertModel; the checkpoint prefixes it with "bert." and adds the head.
    assert {f"bert.{name}" for name in base} - {"bert.pooler.dense.weight"} <= set(saved) | {
        f"bert.{n}" for n in base if n.startswith("pooler")
    }
    # The merged update moved the query weights, while frozen layers kept the base values.
    query = "encoder.layer.0.attention.self.query.weight"
    key = "encoder.layer.0.attention.self.key.weight"
    assert not saved[f"bert.{query}"].equal(base[query])
    assert saved[f"bert.{key}"].equal(base[key])
    config = json.loads((Path(spec.output_dir) / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert result["trainable_share"] < 0.5
    (start,) = [event for event in events if event["event"] == "start"]
    assert start["trainable_share"] == result["trainable_share"]


def test_merged_checkpoint_is_accepted_by_the_grader_and_predicts_like_the_trained_model(
    make_spec: MakeSpec, tiny_model: str
) -> None:
    from grading.evaluation import load_checkpoint, predict
    from tests.training.support import LABELS

    spec = make_spec(hp_code(epochs=3, learning_rate=5e-2) + LORA)
    result, _ = run(spec)
    model = load_checkpoint(str(Path(spec.output_dir).parent), base_model=tiny_model, labels=LABELS)
    texts = ["the alpha market", "bravo stock today", "a charlie report"]
    predictions = predict(model, texts, base_model=tiny_model, device="cpu").predictions
    # The tiny model learns the keyword task through the adapters alone.
    assert result["final_dev_accuracy"] >= 0.6
    assert len(predictions) == 3


def test_a_module_without_merge_is_reported_with_the_tensor_it_adds(make_spec: MakeSpec) -> None:
    code = LORA.replace("def merge(self):", "def unmerge(self):")
    with pytest.raises(
        LearnerCodeError,
        match=r"16 tensor\(s\) the base model does not .*merge\(\) method.*self\.query\.",
    ):
        train(make_spec(hp_code(epochs=1) + code))


def test_merge_returning_something_else_is_a_learner_error(make_spec: MakeSpec) -> None:
    code = LORA.replace("return self.base\n", "return None\n")
    with pytest.raises(LearnerCodeError, match=r"merge\(\) of the adapter at .*query must return"):
        train(make_spec(hp_code(epochs=1) + code))


def test_merge_that_raises_blames_the_learner_line(make_spec: MakeSpec) -> None:
    code = LORA.replace(
        "with torch.no_grad():", "raise ValueError('boom')\n        with torch.no_grad():"
    )
    with pytest.raises(
        LearnerCodeError, match=r"merge\(\) of the adapter .* raised ValueError: boom"
    ):
        train(make_spec(hp_code(epochs=1) + code))


def test_a_model_over_the_trainable_share_cap_is_refused_before_training(
    make_spec: MakeSpec,
) -> None:
    events: list[dict[str, Any]] = []
    with pytest.raises(
        LearnerCodeError, match=r"trainable \(100\.0%\); this lab allows at most 5%"
    ):
        train(make_spec(hp_code(epochs=1), max_trainable_share=0.05), on_event=events.append)
    # Refused before the start: no training time.
    assert events == [{"event": "loading_code"}, {"event": "code_imported"}]


def test_a_model_under_the_cap_trains(make_spec: MakeSpec) -> None:
    result, _ = run(make_spec(hp_code(epochs=1) + LORA, max_trainable_share=0.5))
    assert 0 < result["trainable_share"] <= 0.5


@pytest.mark.parametrize(
    ("value", "message"),
    [(1.5, r"max_trainable_share must be in \(0, 1\]"), ("5%", "must be a number or null")],
)
def test_a_bad_trainable_share_in_the_spec_is_a_spec_error(
    make_spec: MakeSpec, value: Any, message: str
) -> None:
    from labs.training.spec import SpecError

    with pytest.raises(SpecError, match=message):
        make_spec(max_trainable_share=value)
