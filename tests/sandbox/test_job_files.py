"""Reading results back from a job folder the learner could write to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox import UnsafeJobFile, open_job_file


def test_plain_file_is_read(job_dir: Path) -> None:
    (job_dir / "checkpoint").mkdir()
    (job_dir / "checkpoint" / "config.json").write_bytes(b'{"num_labels": 3}')
    data = open_job_file(str(job_dir), "checkpoint/config.json", max_bytes=1024)
    assert data == b'{"num_labels": 3}'


def test_symlink_to_shadow_is_refused(job_dir: Path) -> None:
    (job_dir / "model.safetensors").symlink_to("/etc/shadow")
    with pytest.raises(UnsafeJobFile, match="symbolic link"):
        open_job_file(str(job_dir), "model.safetensors", max_bytes=1 << 20)


def test_symlinked_folder_is_refused(job_dir: Path) -> None:
    (job_dir / "checkpoint").symlink_to("/etc")
    with pytest.raises(UnsafeJobFile, match="symbolic link"):
        open_job_file(str(job_dir), "checkpoint/passwd", max_bytes=1 << 20)


def test_fifo_is_refused_without_blocking(job_dir: Path) -> None:
    os.mkfifo(job_dir / "config.json")
    with pytest.raises(UnsafeJobFile, match="not a regular file"):
        open_job_file(str(job_dir), "config.json", max_bytes=1024)


def test_oversized_file_is_refused(job_dir: Path) -> None:
    (job_dir / "model.safetensors").write_bytes(b"\0" * 2048)
    with pytest.raises(UnsafeJobFile, match="over the 1024-byte limit"):
        open_job_file(str(job_dir), "model.safetensors", max_bytes=1024)


def test_hard_link_is_refused(job_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "grader-only.csv"
    outside.write_text("held-out labels")
    os.link(outside, job_dir / "config.json")
    with pytest.raises(UnsafeJobFile, match="hard link"):
        open_job_file(str(job_dir), "config.json", max_bytes=1024)


@pytest.mark.parametrize("name", ["../secret", "/etc/shadow", "a//b", "./x", ""])
def test_names_leaving_the_job_folder_are_refused(job_dir: Path, name: str) -> None:
    with pytest.raises(UnsafeJobFile, match="not a plain relative path"):
        open_job_file(str(job_dir), name, max_bytes=1024)


def test_missing_file_is_not_found_rather_than_unsafe(job_dir: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_job_file(str(job_dir), "model.safetensors", max_bytes=1024)
