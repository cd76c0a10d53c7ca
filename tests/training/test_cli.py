"""`python -m labs.training`: stdout is only JSON events, exit codes tell the worker what happened."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from labs.training.spec import RunSpec
from tests.training.conftest import MakeSpec
from tests.training.support import hp_code

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    """Run the engine's command line like the sandbox does: a bare environment, cwd = project."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "labs.training", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Every stdout line must be a JSON object: json.loads fails the test otherwise.
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all(isinstance(event, dict) and "event" in event for event in events)
    return proc.returncode, events, proc.stderr


def spec_file(spec: RunSpec, tmp_path: Path) -> str:
    path = tmp_path / "spec.json"
    spec.to_json(path)
    return str(path)


def test_successful_run_exits_0_and_learner_prints_go_to_stderr(
    make_spec: MakeSpec, tmp_path: Path
) -> None:
    code = (
        hp_code(epochs=1)
        + "print('hello from the learner')\nimport os\nos.write(1, b'raw fd 1\\n')\n"
    )
    spec = make_spec(code)
    code_, events, stderr = run_cli("--spec", spec_file(spec, tmp_path))
    assert code_ == 0, stderr
    kinds = [e["event"] for e in events if e["event"] != "step"]
    assert kinds == ["loading_code", "code_imported", "start", "epoch", "dev_analysis", "done"]
    assert "hello from the learner" in stderr
    assert "raw fd 1" in stderr  # even writes straight to file descriptor 1 stay out of the events
    assert (Path(spec.output_dir) / "model.safetensors").is_file()


def test_learner_error_exits_3_with_the_learner_traceback(
    make_spec: MakeSpec, tmp_path: Path
) -> None:
    spec = make_spec("def preprocess(text):\n    return 1 / 0\n")
    code, events, stderr = run_cli("--spec", spec_file(spec, tmp_path))
    assert code == 3, stderr
    error = events[-1]
    assert error["event"] == "learner_error"
    assert error["message"] == (
        "preprocess() raised ZeroDivisionError: division by zero (solution.py, line 2)"
    )
    assert error["traceback"].splitlines() == [
        "Traceback (most recent call last):",
        '  File "solution.py", line 2, in preprocess',
        "    return 1 / 0",
        "ZeroDivisionError: division by zero",
    ]


def test_bad_spec_exits_2(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text('{"base_model": "/x", "surprise": 1}')
    code, events, _ = run_cli("--spec", str(tmp_path / "spec.json"))
    assert code == 2
    assert events[-1]["event"] == "spec_error"
    assert "surprise" in events[-1]["message"]


def test_usage_error_exits_2() -> None:
    code, events, stderr = run_cli("--no-such-flag")
    assert code == 2
    assert events == []
    assert "usage:" in stderr


def test_sigterm_stops_the_run_with_exit_4(make_spec: MakeSpec, tmp_path: Path) -> None:
    # The learner's file signals its own process at import time: the engine must
    # treat it like the sandbox's timeout and stop before the first step.
    code = "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n"
    spec = make_spec(code)
    exit_code, events, stderr = run_cli("--spec", spec_file(spec, tmp_path))
    assert exit_code == 4, stderr
    assert events[-1]["event"] == "stopped"
    assert not (Path(spec.output_dir) / "model.safetensors").exists()
