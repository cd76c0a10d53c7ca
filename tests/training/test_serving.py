"""The serving stage's inside: the held-out texts through the learner's preprocess, silently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labs.training.contract import LearnerCodeError
from labs.training.serving import LOADING_CODE_EVENT, SERVED_FILE, serve_preprocess
from labs.training.spec import SpecError

ROOT = Path(__file__).resolve().parents[2]
SECRET = "held-out canary 7Q3ZK"


def serving_folder(tmp_path: Path, code: str, texts: list[str]) -> Path:
    (tmp_path / "solution.py").write_text(code, encoding="utf-8")
    (tmp_path / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    return tmp_path


def served(folder: Path) -> list[str]:
    return json.loads((folder / SERVED_FILE).read_text(encoding="utf-8"))


def test_each_text_comes_back_through_the_preprocess_in_order(tmp_path: Path) -> None:
    code = "def preprocess(text):\n    return text.upper() + '!'\n"
    folder = serving_folder(tmp_path, code, ["b", "a", SECRET])
    serve_preprocess(folder, on_loading_code=lambda: None)
    assert served(folder) == ["B!", "A!", SECRET.upper() + "!"]


def test_code_without_the_hook_serves_the_texts_unchanged(tmp_path: Path) -> None:
    folder = serving_folder(tmp_path, "HYPERPARAMETERS = {}\n", ["x", "y"])
    serve_preprocess(folder, on_loading_code=lambda: None)
    assert served(folder) == ["x", "y"]


def test_loading_code_comes_before_any_learner_code_runs(tmp_path: Path) -> None:
    # Whatever ends the program after `loading_code` may be the learner's doing; before, not.
    calls: list[str] = []
    code = "raise RuntimeError('at import')\n"
    folder = serving_folder(tmp_path, code, ["x"])
    with pytest.raises(LearnerCodeError):
        serve_preprocess(folder, on_loading_code=lambda: calls.append("loading_code"))
    assert calls == ["loading_code"]


def test_a_folder_the_worker_did_not_write_fails_before_loading_code(tmp_path: Path) -> None:
    calls: list[str] = []
    (tmp_path / "solution.py").write_text("", encoding="utf-8")
    (tmp_path / "texts.json").write_text('{"not": "a list"}', encoding="utf-8")
    with pytest.raises(SpecError):
        serve_preprocess(tmp_path, on_loading_code=lambda: calls.append("loading_code"))
    assert calls == []


@pytest.mark.parametrize(
    "returned", ["42", "'x' * 10_001", "'\\ud800'"], ids=["not-a-str", "too-long", "surrogate"]
)
def test_a_text_training_would_refuse_is_refused_here_too(tmp_path: Path, returned: str) -> None:
    code = f"def preprocess(text):\n    return {returned}\n"
    folder = serving_folder(tmp_path, code, ["x"])
    with pytest.raises(LearnerCodeError, match=r"^preprocess\(\) "):
        serve_preprocess(folder, on_loading_code=lambda: None)
    assert not (folder / SERVED_FILE).exists()


def run_cli(folder: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "labs.training", "--serve-preprocess", str(folder)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_prints_only_loading_code_and_nothing_of_the_learners_error(tmp_path: Path) -> None:
    code = "def preprocess(text):\n    raise ValueError('SECRET-' + text)\n"
    proc = run_cli(serving_folder(tmp_path, code, [SECRET]))
    assert proc.returncode == 3
    assert [json.loads(line) for line in proc.stdout.splitlines()] == [LOADING_CODE_EVENT]
    # No traceback, no message: both would quote the held-out text.
    assert "SECRET-" not in proc.stderr and SECRET not in proc.stderr


def test_cli_exits_0_with_the_served_texts(tmp_path: Path) -> None:
    code = "def preprocess(text):\n    print('the learner prints', text)\n    return text[::-1]\n"
    folder = serving_folder(tmp_path, code, ["abc"])
    proc = run_cli(folder)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [json.dumps(LOADING_CODE_EVENT)]  # prints go to stderr
    assert served(folder) == ["cba"]
