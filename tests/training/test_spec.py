"""RunSpec: JSON round trip and clear errors; base-model names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labs.training.base_models import resolve_base_model
from labs.training.spec import RunSpec, SpecError

REQUIRED = {
    "base_model": "/models/minilm",
    "code_file": "/job/solution.py",
    "train_file": "/job/train.csv",
    "dev_file": "/job/dev.csv",
    "labels": ["negative", "neutral", "positive"],
    "output_dir": "/job/checkpoint",
}


def write_json(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data))
    return path


def test_spec_round_trips_through_json(tmp_path: Path) -> None:
    spec = RunSpec(**REQUIRED, max_epochs=5, threads=2, device="cpu")
    spec.to_json(tmp_path / "spec.json")
    assert RunSpec.from_json(tmp_path / "spec.json") == spec


def test_defaults_fill_in_the_optional_fields(tmp_path: Path) -> None:
    spec = RunSpec.from_json(write_json(tmp_path, REQUIRED))
    assert (spec.max_epochs, spec.max_length_cap, spec.max_batch_size) == (3, 256, 128)
    assert (spec.device, spec.threads, spec.progress_every) == ("auto", None, 5)


def test_unknown_field_is_named_with_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(
        SpecError, match=r"unknown run spec field\(s\): epochs; allowed: base_model"
    ):
        RunSpec.from_json(write_json(tmp_path, {**REQUIRED, "epochs": 3}))


def test_missing_fields_are_all_named(tmp_path: Path) -> None:
    data = {k: v for k, v in REQUIRED.items() if k not in ("labels", "dev_file")}
    with pytest.raises(SpecError, match=r"missing required field\(s\): dev_file, labels"):
        RunSpec.from_json(write_json(tmp_path, data))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": "neg,pos"}, "labels must be a list of strings"),
        ({"labels": []}, "at least one label"),
        ({"labels": ["a", "a"]}, "must not repeat"),
        ({"threads": True}, "threads must be an integer or null"),
        ({"device": "tpu"}, "device must be one of auto, cpu, cuda"),
        ({"max_epochs": 0}, "max_epochs must be at least 1"),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        RunSpec.from_json(write_json(tmp_path, {**REQUIRED, **change}))


def test_unreadable_spec_files_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read run spec"):
        RunSpec.from_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SpecError, match="is not valid JSON"):
        RunSpec.from_json(tmp_path / "bad.json")
    with pytest.raises(SpecError, match="must be a JSON object, got list"):
        RunSpec.from_json(write_json(tmp_path, [1]))


def test_minilm_resolves_to_the_packaged_model() -> None:
    folder = Path(resolve_base_model("minilm-l6"))
    assert (folder / "config.json").is_file()
    assert (folder / "model.safetensors").is_file()


def test_absolute_model_folder_is_used_as_is(tmp_path: Path) -> None:
    assert resolve_base_model(str(tmp_path)) == str(tmp_path)


@pytest.mark.parametrize(
    ("name", "message"),
    [("bert-base-uncased", "unknown base model 'bert-base-uncased'"), ("/no/such", "not exist")],
)
def test_unknown_base_models_are_refused(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_base_model(name)
