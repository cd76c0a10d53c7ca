"""The package built from this checkout: what a non-editable install puts in the venv."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_no_course_content_and_so_no_reference_solution(tmp_path: Path) -> None:
    # The venv's site-packages is mounted read-only into every learner's sandbox: a
    # reference solution there is readable by every learner of every lab.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".venv", ".git", "var", "build", "*.egg-info", "__pycache__"),
    )
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            ".",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "wheel"),
            "--quiet",
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheel").glob("llm_academy-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "sandbox/supervisor.py" in names  # the packages are there
    assert [name for name in names if name.endswith("solution.py")] == []
    assert [name for name in names if name.startswith("courses/content/")] == []
