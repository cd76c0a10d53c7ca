"""`make run`'s supervisor leaves nothing behind on Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def sessions_members(sessions: set[int]) -> set[int]:
    """Live (not zombie) processes whose session is one of `sessions`, from /proc."""
    members = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...; comm may hold spaces, so split after ')'.
        state, _ppid, _pgrp, session = stat.rsplit(")", 1)[1].split()[:4]
        if int(session) in sessions and state != "Z":
            members.add(int(entry.name))
    return members


def child_pids(output: Path, timeout: float = 30) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in output.read_text().splitlines():
            if line.startswith("supervise: ") and " pid " in line:
                pairs = line.removeprefix("supervise: ").split(", ")
                return {p.split(" pid ")[0]: int(p.split(" pid ")[1]) for p in pairs}
        time.sleep(0.1)
    raise AssertionError(output.read_text())


def wait_gone(process: subprocess.Popen[bytes], sessions: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    left = sessions_members(sessions)
    while time.monotonic() < deadline and (process.poll() is None or left):
        time.sleep(0.1)
        left = sessions_members(sessions)
    return left if process.poll() is not None else left | {process.pid}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_the_web_server_and_worker_leave_no_process_ten_seconds_after_the_signal(
    tmp_path, stop_signal
):
    env = {**os.environ, "ACADEMY_VAR_DIR": str(tmp_path / "var"), "HF_HUB_OFFLINE": "1"}
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    python = str(ROOT / ".venv" / "bin" / "python")
    if not Path(python).exists():
        python = sys.executable
    subprocess.run(
        [python, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True
    )
    port = free_port()
    output = tmp_path / "supervise.log"
    with output.open("wb") as log:
        process = subprocess.Popen(
            [python, "-m", "academy.supervise", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        children = child_pids(output)
        assert set(children) == {"web", "worker", "fast-worker"}
        deadline = time.monotonic() + 90
        web_up = worker_up = False
        while time.monotonic() < deadline and not (web_up and worker_up):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2)
                web_up = True
            except OSError:
                pass
            worker_up = output.read_text().count(" ready.") >= 2  # both workers
            time.sleep(0.3)
        assert web_up and worker_up, output.read_text()
        sessions = set(children.values())
        # The worker's pool and beat are children of its own: more than the two leaders.
        assert len(sessions_members(sessions)) > 2

        process.send_signal(stop_signal)
        left = wait_gone(process, sessions, seconds=10)

        assert not left, (left, output.read_text())
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_a_child_that_ignores_sigterm_and_sigquit_is_killed_with_its_own_children(tmp_path):
    stubborn = (
        "import signal, subprocess, sys, time\n"
        "for s in (signal.SIGTERM, signal.SIGQUIT): signal.signal(s, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print('started', flush=True); time.sleep(120)\n"
    )
    script = tmp_path / "stubborn.py"
    script.write_text(stubborn)
    runner = (
        "import sys; from academy import supervise\n"
        f"sys.exit(supervise.supervise({{'worker': [sys.executable, {str(script)!r}]}}))\n"
    )
    output = tmp_path / "out.log"
    with output.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", runner], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        children = child_pids(output)
        deadline = time.monotonic() + 20
        while "started" not in output.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        sessions = set(children.values())
        assert len(sessions_members(sessions)) == 2  # the stubborn child and its own child

        process.send_signal(signal.SIGINT)
        left = wait_gone(process, sessions, seconds=10)

        assert not left, (left, output.read_text())
    finally:
        if process.poll() is None:
            process.kill()


def test_the_fast_worker_serves_the_query_queues_and_the_run_worker_does_not():
    from academy.supervise import commands
    from labs.services.queries import INFERENCE_QUEUE, PRECHECK_QUEUE

    named = commands(python="/venv/bin/python", host="127.0.0.1", port=8000)
    queues = {
        name: argv[argv.index("-Q") + 1].split(",") for name, argv in named.items() if "-Q" in argv
    }
    assert set(queues["fast-worker"]) == {PRECHECK_QUEUE, INFERENCE_QUEUE}
    assert not {PRECHECK_QUEUE, INFERENCE_QUEUE} & set(queues["worker"])
