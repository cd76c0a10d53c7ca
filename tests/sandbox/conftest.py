"""Fixtures for the sandbox runner tests: real bubblewrap, real venv python, no mocks."""

from __future__ import annotations

import os
import sys
import textwrap
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sandbox import (
    Capabilities,
    Limits,
    SandboxMode,
    SandboxResult,
    detect_capabilities,
    run_sandboxed,
)

# The interpreter of the project venv (the one running these tests): the
# same one the workers hand to the sandbox.
VENV_PYTHON = os.path.join(sys.prefix, "bin", "python")
FAST_LIMITS = Limits(wall_seconds=30, cpu_seconds=30, memory_mb=512)


@pytest.fixture(scope="session")
def capabilities() -> Capabilities:
    return detect_capabilities()


@pytest.fixture
def strict(capabilities: Capabilities) -> Capabilities:
    """The full sandbox, or a skip saying why; in CI a missing sandbox fails."""
    if not capabilities.full:
        reason = "full sandbox unavailable here:\n" + capabilities.describe()
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return capabilities


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    path = tmp_path / "job"
    path.mkdir()
    return path


@pytest.fixture
def token() -> str:
    """A unique string to find the test's processes (in cmdlines) or secrets."""
    return f"sandbox-test-{uuid.uuid4().hex}"


@dataclass
class Run:
    result: SandboxResult
    lines: list[str] = field(default_factory=list)

    @property
    def stdout(self) -> str:
        return "\n".join(self.lines)


ScriptRunner = Callable[..., Run]


@pytest.fixture
def run_script(job_dir: Path) -> ScriptRunner:
    """Write `source` to job/main.py and run it with the venv python."""

    def run(
        source: str,
        *args: str,
        limits: Limits = FAST_LIMITS,
        mode: SandboxMode = SandboxMode.STRICT,
        **kwargs: object,
    ) -> Run:
        (job_dir / "main.py").write_text(textwrap.dedent(source))
        lines: list[str] = []
        kwargs.setdefault("on_stdout_line", lines.append)
        script = "/job/main.py" if mode is SandboxMode.STRICT else str(job_dir / "main.py")
        result = run_sandboxed(
            argv=[VENV_PYTHON, "-I", script, *args],
            job_dir=str(job_dir),
            limits=limits,
            mode=mode,
            poll_seconds=0.1,
            **kwargs,  # type: ignore[arg-type]
        )
        return Run(result=result, lines=lines)

    return run


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains marker (left-over sandbox processes)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry))
    return found
