"""Run a snippet in a child Python under a memory and time bound, for input that used to
exhaust one (a YAML alias bomb, lists nested 300 deep)."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEMORY_BYTES = 1024 * 1024 * 1024  # far above what refusing needs, far below what the bomb takes
SECONDS = 20


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def run_bounded(code: str) -> subprocess.CompletedProcess[str]:
    """`code` run with the repository on the path; raises TimeoutExpired past the bound."""
    return subprocess.run(
        [sys.executable, "-"],  # the code on stdin: a deep lesson is too long for argv
        input=code,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS,
        preexec_fn=_limit_memory,  # no threads are started before the fork
        check=False,
    )
