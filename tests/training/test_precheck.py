"""The engine's precheck mode in-process (the sandboxed path is tests/runs/test_precheck.py):
what it reports for code a run would refuse late, on a tiny model shaped like the base."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from labs.training.precheck import INPUT_FILE, run_precheck, token_lengths
from labs.training.tiny import make_tiny_bert_like

# A LoRA-like prepare_model that freezes everything but the classifier and the last layer.
FREEZE_BUT_LAST = """
def prepare_model(model):
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.bert.encoder.layer[5].parameters():
        p.requires_grad_(True)
    for p in model.classifier.parameters():
        p.requires_grad_(True)
    return model
"""


@pytest.fixture(scope="module")
def shaped(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(a 6-layer "base" model, a tiny model shaped like it)."""
    from labs.training.tiny import make_tiny_bert

    root = tmp_path_factory.mktemp("shaped")
    base = make_tiny_bert(root / "base", hidden_size=48, num_layers=6, num_heads=12)
    return base, make_tiny_bert_like(base, root / "tiny")


def precheck(tmp_path: Path, make_spec, shaped, code: str, **spec) -> dict:
    base, tiny = shaped
    run = make_spec(code, base_model=base, **spec)
    folder = tmp_path / "precheck"
    folder.mkdir()
    shutil.copy(run.code_file, folder / "solution.py")
    shutil.copy(run.train_file, folder / "train.csv")
    shutil.copy(run.dev_file, folder / "dev.csv")
    given = {"run": run.to_dict(), "tiny_model": tiny, "required_hooks": []}
    (folder / INPUT_FILE).write_text(json.dumps(given))
    return run_precheck(folder, on_loading_code=lambda: None)


def test_the_tiny_model_has_the_base_models_layers_and_heads(shaped):
    base, tiny = shaped
    for key in ("num_hidden_layers", "num_attention_heads", "vocab_size"):
        assert (
            json.loads(Path(tiny, "config.json").read_text())[key]
            == json.loads(Path(base, "config.json").read_text())[key]
        )


def test_code_that_reaches_the_sixth_layer_runs_and_its_share_is_the_base_models(
    tmp_path, make_spec, shaped
):
    report = precheck(tmp_path, make_spec, shaped, FREEZE_BUT_LAST, max_trainable_share=0.05)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["prepare_model"]["status"] == "ok", checks
    trainable = report["trainable"]
    assert trainable["measured"] and 0 < trainable["trainable_share"] < 1
    assert trainable["over_cap"] is (trainable["trainable_share"] > 0.05)


def test_a_hook_that_returns_the_wrong_thing_is_refused_by_the_contracts_own_check(
    tmp_path, make_spec, shaped
):
    code = "def prepare_model(model):\n    model.bert.requires_grad_(False)\n"
    report = precheck(tmp_path, make_spec, shaped, code)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["prepare_model"]["status"] == "error"
    assert "did you forget `return model`" in checks["prepare_model"]["message"]
    assert "build_optimizer" not in checks and "schedule" not in report


def test_token_lengths_count_what_max_length_cuts(shaped):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(shaped[1])
    found = token_lengths(tokenizer, ["short", "a much longer text " * 10], max_length=8)
    assert found["texts"] == 2 and found["truncated"] == 1
    assert sum(b["count"] for b in found["bins"]) == 2
    assert found["longest"] > 8
