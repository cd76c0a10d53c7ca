"""Modes and capabilities: STRICT never degrades silently, BASIC says what it lacks,
the RLIMIT_AS fallback still catches a memory hog."""

from __future__ import annotations

import dataclasses
import json
import logging
import resource
from pathlib import Path

import pytest

from sandbox import (
    Capabilities,
    Limits,
    SandboxMode,
    SandboxUnavailable,
    detect_capabilities,
    run_sandboxed,
)
from tests.sandbox.conftest import VENV_PYTHON, ScriptRunner


def test_capabilities_describe_the_machine(capabilities: Capabilities) -> None:
    text = capabilities.describe()
    if capabilities.full:
        assert text.startswith("STRICT sandbox available")
    else:
        assert "BASIC mode only" in text
        assert "NOT isolated" in text
    if capabilities.memory_cgroup:
        assert f"cgroup v{capabilities.memory_cgroup_version}" in text
    else:
        assert "RLIMIT_AS fallback" in text


def test_strict_mode_refuses_to_run_without_bubblewrap(
    capabilities: Capabilities, job_dir: Path
) -> None:
    without_bwrap = dataclasses.replace(capabilities, bubblewrap=None)
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        run_sandboxed(
            argv=[VENV_PYTHON, "-c", "pass"],
            job_dir=str(job_dir),
            limits=Limits(wall_seconds=5, cpu_seconds=5, memory_mb=128),
            mode=SandboxMode.STRICT,
            capabilities=without_bwrap,
        )
    assert "BASIC mode only" in without_bwrap.describe()


def test_strict_mode_as_root_refuses_to_run_without_setpriv(
    capabilities: Capabilities, job_dir: Path
) -> None:
    root_without_setpriv = dataclasses.replace(capabilities, is_root=True, setpriv=None)
    with pytest.raises(SandboxUnavailable, match="setpriv"):
        run_sandboxed(
            argv=[VENV_PYTHON, "-c", "pass"],
            job_dir=str(job_dir),
            limits=Limits(wall_seconds=5, cpu_seconds=5, memory_mb=128),
            mode=SandboxMode.STRICT,
            capabilities=root_without_setpriv,
        )


def test_basic_mode_runs_with_limits_only_and_says_so(
    run_script: ScriptRunner,
    job_dir: Path,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ACADEMY_SECRET_KEY", token)
    caplog.set_level(logging.WARNING, logger="sandbox")
    (job_dir / "input.txt").write_text("data")
    run = run_script(
        """
        import json, os, resource
        print(json.dumps({
            "cwd": os.getcwd(),
            "env": dict(os.environ),
            "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[0],
            "input": open(os.environ["INPUT"]).read(),
        }))
        """,
        limits=Limits(wall_seconds=30, cpu_seconds=30, memory_mb=256, max_processes=40),
        mode=SandboxMode.BASIC,
        # Sandbox paths are translated to the job folder in BASIC mode.
        env={"INPUT": "/job/input.txt"},
    )
    seen = json.loads(run.lines[-1])
    assert run.result.mode is SandboxMode.BASIC
    assert run.result.outcome == "ok"
    assert seen["cwd"] == str(job_dir)
    assert seen["env"]["INPUT"] == str(job_dir / "input.txt")
    assert seen["input"] == "data"
    if run.result.process_enforcement == "cgroup":
        # A pids cgroup caps the run; RLIMIT_NPROC, counted per uid, is left as it was.
        assert seen["nproc"] == resource.getrlimit(resource.RLIMIT_NPROC)[0]
    else:
        assert seen["nproc"] == 40
    assert token not in run.stdout
    assert "WITHOUT network or file-system isolation" in caplog.text


def test_address_space_limit_is_the_fallback_without_a_memory_cgroup(
    run_script: ScriptRunner, strict: Capabilities
) -> None:
    no_cgroup = dataclasses.replace(strict, memory_cgroup=None)
    run = run_script(
        """
        # Reserving 10 GB is refused at once under RLIMIT_AS (pages untouched).
        data = bytearray(10 << 30)
        """,
        limits=Limits(wall_seconds=60, cpu_seconds=60, memory_mb=256),
        capabilities=no_cgroup,
    )
    assert run.result.memory_enforcement == "rlimit_as"
    assert run.result.outcome == "memory"
    assert "MemoryError" in run.result.stderr_tail


def test_detection_is_repeatable(capabilities: Capabilities) -> None:
    assert detect_capabilities() == capabilities
