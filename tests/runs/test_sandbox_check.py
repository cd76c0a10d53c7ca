from __future__ import annotations

import io
import os
import shutil

import pytest
from django.core.management import CommandError, call_command

STRICT_HERE = shutil.which("bwrap") is not None and shutil.which("prlimit") is not None


@pytest.mark.skipif(not STRICT_HERE, reason="bubblewrap and prlimit are not installed here")
def test_sandbox_check_prints_the_strict_sandbox_and_the_memory_cap(settings):
    settings.ACADEMY_SANDBOX_MODE = "strict"
    out = io.StringIO()
    call_command("sandbox_check", stdout=out)
    text = out.getvalue()
    assert "Configured mode: strict" in text
    assert "STRICT sandbox available" in text
    assert "Memory cap: " in text
    assert ("cgroup v" in text) or ("RLIMIT_AS fallback" in text)
    # This machine has no GPU: the check says where `gpu` labs train, not nothing.
    assert "GPU device nodes: none on this machine" in text or "/dev/nvidia" in text


@pytest.mark.skipif(not STRICT_HERE, reason="bubblewrap and prlimit are not installed here")
def test_sandbox_check_says_how_each_run_gets_its_own_processes_and_disk(settings, tmp_path):
    settings.ACADEMY_SANDBOX_MODE = "strict"
    settings.ACADEMY_JOBS_DIR = tmp_path / "jobs"
    settings.ACADEMY_JOB_DISK_MB = 512
    settings.ACADEMY_JOBS_MIN_FREE_MB = 1024
    (tmp_path / "jobs" / "7" / "checkpoint").mkdir(parents=True)
    (tmp_path / "jobs" / "7" / "checkpoint" / "model.safetensors").write_bytes(b"x" * (3 << 20))
    out = io.StringIO()
    call_command("sandbox_check", stdout=out)
    text = out.getvalue()
    process_lines = [line for line in text.splitlines() if line.startswith("Process limit: ")]
    assert len(process_lines) == 1
    if os.geteuid() == 0:  # root: a pids cgroup, else a uid of its own, never a shared uid
        assert "SHARED" not in process_lines[0]
        assert "Job folder quota: 512 MB per run (ACADEMY_JOB_DISK_MB)." in text
    assert "Job folder quota: " in text
    assert f"Job folders: 1 under {tmp_path / 'jobs'}, holding 3.0 MB" in text
    assert "checkpoint 30 days (ACADEMY_JOB_RETENTION_DAYS)" in text
    assert "runs are claimed only above 1024 MB (ACADEMY_JOBS_MIN_FREE_MB)" in text


def test_sandbox_check_says_when_the_disk_is_too_full_to_claim_runs(settings, tmp_path):
    settings.ACADEMY_SANDBOX_MODE = "basic"
    settings.ACADEMY_JOBS_DIR = tmp_path / "jobs"
    settings.ACADEMY_JOBS_MIN_FREE_MB = 10**9
    out = io.StringIO()
    call_command("sandbox_check", stdout=out)
    assert "BELOW IT NOW, this worker claims nothing." in out.getvalue()


def test_sandbox_check_fails_when_strict_cannot_run(settings, monkeypatch):
    settings.ACADEMY_SANDBOX_MODE = "strict"
    # A PATH without the tools: the probe finds no bubblewrap, as on a bare laptop.
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(CommandError, match="strict sandbox cannot run on this machine"):
        call_command("sandbox_check", stdout=io.StringIO())


def test_sandbox_check_names_an_unusable_cgroup_parent(settings, tmp_path):
    settings.ACADEMY_SANDBOX_MODE = "basic"
    settings.ACADEMY_SANDBOX_CGROUP_PARENT = str(tmp_path / "no-such-cgroup")
    out = io.StringIO()
    call_command("sandbox_check", stdout=out)
    assert "is not usable" in out.getvalue()
    assert "WARNING: basic mode" in out.getvalue()
