"""Full training runs on a tiny BERT: events, checkpoint, caps, stopping, seeding, hooks."""

from __future__ import annotations

import json
import math
import stat
from pathlib import Path
from typing import Any

import pytest

from labs.training.contract import LearnerCodeError
from labs.training.data import DataError
from labs.training.engine import train
from labs.training.spec import RunSpec
from tests.training.conftest import MakeSpec
from tests.training.support import LABELS, hp_code

STEP_KEYS = {"event", "step", "total_steps", "epoch", "loss", "lr", "samples_per_s", "elapsed_s"}
START_KEYS = {
    "event",
    "device",
    "device_name",
    "precision",
    "total_steps",
    "epochs",
    "train_examples",
    "dev_examples",
    "trainable_params",
    "total_params",
    "trainable_share",
    "hyperparameters",
}
DONE_KEYS = {
    "event",
    "wall_s",
    "samples_per_s",
    "device",
    "checkpoint",
    "final_dev_accuracy",
    "trainable_params",
    "total_params",
    "trainable_share",
    "best_epoch",
    "stopped_early",
}


def run(spec: RunSpec, **kwargs: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    result = train(spec, on_event=events.append, **kwargs)
    return result, events


def of_kind(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["event"] == kind]


def test_full_run_reports_progress_and_saves_a_reloadable_checkpoint(make_spec: MakeSpec) -> None:
    from transformers import AutoModelForSequenceClassification

    spec = make_spec(hp_code(epochs=2), progress_every=3)
    result, events = run(spec)

    # Nothing can come before `loading_code`: no line of the learner's has run yet.
    assert [event["event"] for event in events[:3]] == ["loading_code", "code_imported", "start"]
    assert events[-1] == result
    assert result["event"] == "done"
    start = events[2]
    assert set(start) == START_KEYS
    assert start["device"] == "cpu"
    assert (start["train_examples"], start["dev_examples"]) == (90, 30)
    assert start["total_steps"] == 2 * math.ceil(90 / 8)
    assert start["hyperparameters"]["batch_size"] == 8
    steps = of_kind(events, "step")
    assert all(set(step) == STEP_KEYS for step in steps)
    # Every 3rd step, plus the last one so the loss curve reaches the end.
    assert [s["step"] for s in steps] == [3, 6, 9, 12, 15, 18, 21, 24]
    assert steps[-1]["epoch"] == 2.0
    assert all(math.isfinite(s["loss"]) and s["samples_per_s"] > 0 for s in steps)
    epochs = of_kind(events, "epoch")
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(0.0 <= e["dev_accuracy"] <= 1.0 and e["dev_loss"] > 0 for e in epochs)
    assert set(result) == DONE_KEYS
    assert result["final_dev_accuracy"] == epochs[-1]["dev_accuracy"]

    checkpoint = Path(spec.output_dir)
    assert (checkpoint / "config.json").is_file()
    assert (checkpoint / "model.safetensors").is_file()
    assert not list(checkpoint.glob("*.bin")), "no pickle files in a checkpoint"
    # Readable by a grader running as another user than the sandbox.
    assert stat.S_IMODE((checkpoint / "model.safetensors").stat().st_mode) == 0o644
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, local_files_only=True)
    assert model.config.num_labels == len(LABELS)
    assert [model.config.id2label[i] for i in range(len(LABELS))] == LABELS


def test_the_tiny_model_learns_the_keyword_task(make_spec: MakeSpec) -> None:
    result, events = run(make_spec(hp_code()))
    epochs = of_kind(events, "epoch")
    assert epochs[-1]["dev_loss"] < epochs[0]["dev_loss"]
    assert result["final_dev_accuracy"] >= 0.8


def test_preprocess_output_is_what_the_model_trains_and_is_evaluated_on(
    make_spec: MakeSpec,
) -> None:
    # Mapping every text to the same string leaves nothing to learn: every dev
    # example gets the same prediction, so accuracy is exactly one class's share.
    code = hp_code() + "def preprocess(text):\n    return 'same text for all'\n"
    result, events = run(make_spec(code))
    assert all(e["dev_accuracy"] == pytest.approx(1 / 3) for e in of_kind(events, "epoch"))
    assert result["final_dev_accuracy"] == pytest.approx(1 / 3)


def test_preprocess_sees_every_raw_train_and_dev_text(make_spec: MakeSpec, tmp_path: Path) -> None:
    seen = tmp_path / "seen.txt"
    code = hp_code(epochs=1) + (
        "def preprocess(text):\n"
        f"    with open({str(seen)!r}, 'a') as log:\n"
        "        log.write(text + '\\n')\n"
        "    return text.upper()\n"
    )
    spec = make_spec(code)
    run(spec)
    from labs.training.data import read_csv

    raw = [text for text, _ in read_csv(spec.train_file) + read_csv(spec.dev_file)]
    assert seen.read_text().splitlines() == raw


def test_epochs_above_the_cap_are_lowered_with_a_warning(make_spec: MakeSpec) -> None:
    result, events = run(make_spec(hp_code(epochs=5), max_epochs=1))
    (start,) = of_kind(events, "start")
    assert start["epochs"] == 1
    assert start["hyperparameters"]["epochs"] == 1
    (warning,) = of_kind(events, "warning")
    assert "epochs" in warning["message"] and "using 1" in warning["message"]
    assert len(of_kind(events, "epoch")) == 1
    assert result["event"] == "done"


def test_should_stop_ends_the_run_early_without_a_checkpoint(make_spec: MakeSpec) -> None:
    calls = iter(range(100))
    spec = make_spec(hp_code(), progress_every=1)
    result, events = run(spec, should_stop=lambda: next(calls) >= 4)
    assert result == events[-1]
    assert result["event"] == "stopped"
    assert result["step"] == 4
    assert len(of_kind(events, "step")) == 4
    assert not of_kind(events, "done")
    assert not (Path(spec.output_dir) / "model.safetensors").exists()


def test_same_seed_gives_identical_losses_and_another_seed_does_not(make_spec: MakeSpec) -> None:
    def losses(seed: int) -> list[float]:
        _, events = run(make_spec(hp_code(epochs=1, seed=seed), progress_every=1))
        return [e["loss"] for e in of_kind(events, "step")] + [
            e["dev_loss"] for e in of_kind(events, "epoch")
        ]

    first = losses(7)
    assert losses(7) == first
    assert losses(8) != first


def test_prepare_model_can_freeze_the_encoder(make_spec: MakeSpec) -> None:
    code = hp_code(epochs=1) + (
        "def prepare_model(model):\n"
        "    for name, param in model.named_parameters():\n"
        "        param.requires_grad = name.startswith('classifier')\n"
        "    return model\n"
    )
    result, events = run(make_spec(code))
    hidden = 32  # the tiny model's hidden size
    assert of_kind(events, "start")[0]["trainable_params"] == hidden * len(LABELS) + len(LABELS)
    assert result["trainable_params"] < result["total_params"]


def test_build_optimizer_and_training_step_hooks_replace_the_defaults(make_spec: MakeSpec) -> None:
    # A learning rate of zero changes nothing, so dev loss stays put epoch after epoch;
    # the custom training_step's loss is twice the default, visible in the step events.
    code = hp_code(epochs=2) + (
        "import torch\n"
        "import torch.nn.functional as F\n"
        "def build_optimizer(model, hp):\n"
        "    return torch.optim.SGD(model.parameters(), lr=0.0)\n"
        "def training_step(model, batch, hp):\n"
        "    out = model(input_ids=batch['input_ids'], attention_mask=batch['attention_mask'])\n"
        "    return 2 * F.cross_entropy(out.logits, batch['labels'])\n"
    )
    _, events = run(make_spec(code, progress_every=1))
    first, second = of_kind(events, "epoch")
    assert first["dev_loss"] == second["dev_loss"]
    # Untrained 3-way classifier: cross-entropy near ln 3, so the doubled loss is near 2 ln 3.
    assert of_kind(events, "step")[0]["loss"] == pytest.approx(2 * math.log(3), rel=0.1)


def test_build_scheduler_hook_sets_the_learning_rate(make_spec: MakeSpec) -> None:
    code = hp_code(epochs=1) + (
        "import torch\n"
        "def build_scheduler(optimizer, num_training_steps, hp):\n"
        "    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=0.5, total_iters=10**6)\n"
    )
    _, events = run(make_spec(code, progress_every=1))
    assert all(e["lr"] == pytest.approx(3e-2 * 0.5) for e in of_kind(events, "step"))


def test_misspelt_hook_name_is_reported_as_a_warning(make_spec: MakeSpec) -> None:
    code = hp_code(epochs=1) + "def preprocesss(text):\n    return text\n"
    _, events = run(make_spec(code))
    (warning,) = of_kind(events, "warning")
    assert "'preprocesss'" in warning["message"] and "'preprocess'" in warning["message"]


def test_labels_missing_from_the_spec_are_a_data_error(make_spec: MakeSpec) -> None:
    with pytest.raises(DataError, match=r"label\(s\) 'neu' not in the spec's labels"):
        train(make_spec(hp_code(), labels=["pos", "neg"]))


def test_after_training_sees_the_dev_logits_and_its_change_is_saved(make_spec: MakeSpec) -> None:
    """Calibrate on dev, bake it into the weights: the saved head carries the change."""
    from safetensors.torch import load_file

    code = hp_code(epochs=1) + (
        "def after_training(model, dev):\n"
        "    assert dev.logits.shape == (len(dev.labels), len(dev.label_names))\n"
        f"    assert dev.label_names == {LABELS!r}\n"
        "    model.classifier.bias[2] += 1000.0\n"
    )
    spec = make_spec(code)
    result, events = run(spec)

    (after,) = of_kind(events, "after_training")
    assert after["dev_accuracy"] == pytest.approx(1 / 3, abs=0.01)  # everything is 'neu' now
    assert result["final_dev_accuracy"] == after["dev_accuracy"]
    saved = load_file(str(Path(spec.output_dir) / "model.safetensors"))
    assert saved["classifier.bias"][2] > 900


def test_after_training_must_change_the_model_in_place(make_spec: MakeSpec) -> None:
    code = hp_code(epochs=1) + "def after_training(model, dev):\n    return model\n"
    with pytest.raises(
        LearnerCodeError, match=r"after_training\(\) must change the model in place"
    ):
        run(make_spec(code))


def test_a_bf16_run_trains_under_autocast_and_says_so(make_spec: MakeSpec) -> None:
    events: list[dict[str, Any]] = []
    train(make_spec(hp_code(epochs=1), precision="bf16"), on_event=events.append)
    start = next(e for e in events if e["event"] == "start")
    assert start["precision"] == "bf16"
    assert events[-1]["event"] == "done"
