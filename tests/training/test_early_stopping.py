"""Early stopping: watch a dev metric, stop after `patience` flat epochs, keep the best weights."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from labs.training.contract import LearnerCodeError
from labs.training.engine import EarlyStopping, train
from tests.training.conftest import MakeSpec
from tests.training.support import hp_code


def run(spec: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    return train(spec, on_event=events.append), events


def test_a_learning_rate_that_wrecks_the_model_stops_early_and_keeps_the_best_epoch(
    make_spec: MakeSpec,
) -> None:
    # Epoch 1 learns; the huge constant rate then makes dev loss worse, epoch after epoch.
    code = hp_code(epochs=5, early_stopping_patience=1, learning_rate=3e-2)
    code += (
        "import torch\n"
        "def build_scheduler(optimizer, num_training_steps, hp):\n"
        "    per_epoch = num_training_steps // 5\n"
        "    return torch.optim.lr_scheduler.LambdaLR(\n"
        "        optimizer, lambda step: 1.0 if step < per_epoch else 30.0)\n"
    )
    result, events = run(make_spec(code, max_epochs=5))
    epochs = [e for e in events if e["event"] == "epoch"]
    stop = [e for e in events if e["event"] == "early_stop"]
    losses = [e["dev_loss"] for e in epochs]
    assert len(epochs) < 5 and result["stopped_early"]
    assert stop and stop[0]["best_epoch"] == result["best_epoch"]
    assert result["best_epoch"] == 1 + losses.index(min(losses))
    assert result["final_dev_accuracy"] == epochs[result["best_epoch"] - 1]["dev_accuracy"]


def test_the_saved_weights_are_the_best_epochs_not_the_last(make_spec: MakeSpec) -> None:
    from grading.evaluation import load_checkpoint
    from tests.training.support import LABELS

    stopping = EarlyStopping(patience=1, metric="dev_accuracy")
    model = torch.nn.Linear(2, 2)
    assert not stopping.after_epoch(1, {"dev_accuracy": 0.9, "dev_loss": 0.1}, model)
    best = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    assert stopping.after_epoch(2, {"dev_accuracy": 0.5, "dev_loss": 0.2}, model)
    assert stopping.restore_best(model) == 1
    assert model.weight.equal(best)
    assert load_checkpoint  # the grader loads what the engine saved (see test_adapters)
    assert LABELS


def test_without_patience_every_epoch_runs(make_spec: MakeSpec) -> None:
    result, events = run(make_spec(hp_code(epochs=3)))
    assert len([e for e in events if e["event"] == "epoch"]) == 3
    assert result["best_epoch"] is None and result["stopped_early"] is False


def test_epoch_events_carry_dev_macro_f1(make_spec: MakeSpec) -> None:
    _, events = run(make_spec(hp_code(epochs=1)))
    (epoch,) = [e for e in events if e["event"] == "epoch"]
    assert 0.0 <= epoch["dev_macro_f1"] <= 1.0


@pytest.mark.parametrize(
    ("hp", "message"),
    [
        ({"early_stopping_patience": 0}, "out of range"),
        ({"early_stopping_patience": 1.5}, "must be an integer or None"),
        ({"early_stopping_metric": "dev_f1"}, "is not one of 'dev_loss'"),
    ],
)
def test_bad_early_stopping_settings_are_learner_errors(
    make_spec: MakeSpec, hp: dict[str, Any], message: str
) -> None:
    with pytest.raises(LearnerCodeError, match=message):
        train(make_spec(hp_code(**hp)))
