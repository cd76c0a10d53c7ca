from __future__ import annotations

import io
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
