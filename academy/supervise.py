"""`make run`'s supervisor: the web server and the Celery worker, stopped together.

    python -m academy.supervise --host 127.0.0.1 --port 8000

Each child runs in its own session (so its own process group): Ctrl-C in the terminal
reaches only this process, which then stops each group as a whole, the worker's pool and
anything it forked included. A shell `trap 'kill 0'` also signalled make itself and left
the worker orphaned in a warm shutdown; here a group still alive after the grace period is
killed, so nothing outlives the command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

# Celery's warm shutdown waits for the running task (a training run can take minutes);
# after this long the group is sent SIGQUIT (Celery's cold shutdown), then SIGKILL.
GRACE_SECONDS = 3.0
KILL_AFTER_SECONDS = 2.0


def commands(*, python: str, host: str, port: int) -> dict[str, list[str]]:
    celery = str(Path(python).with_name("celery"))
    return {
        "web": [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
        "worker": [
            celery,
            *("-A", "academy", "worker", "--beat", "-Q", "cpu,gpu"),
            *("--concurrency", "1", "--loglevel", "INFO", "--hostname", "runs@%h"),
        ],
        # Its own process for the queries a learner waits on (labs.services.queries), so a
        # precheck or a prediction never waits behind a training run.
        "fast-worker": [
            celery,
            *("-A", "academy", "worker", "-Q", "precheck,inference"),
            *("--concurrency", "1", "--loglevel", "INFO", "--hostname", "fast@%h"),
        ],
    }


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed its uid (the sandbox): still there
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended between the check and now
        os.killpg(pgid, sig)


def stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM each group, then SIGQUIT, then SIGKILL, until no member of any is left."""
    groups = [child.pid for child in children.values()]  # session leaders: pgid == pid
    for sig, wait in (
        (signal.SIGTERM, GRACE_SECONDS),
        (signal.SIGQUIT, KILL_AFTER_SECONDS),
        (signal.SIGKILL, KILL_AFTER_SECONDS),
    ):
        alive = [pgid for pgid in groups if _group_alive(pgid)]
        if not alive:
            break
        for pgid in alive:
            _signal_group(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for child in children.values():
                child.poll()  # reap the leaders, or their zombies keep the group "alive"
            if not any(_group_alive(pgid) for pgid in alive):
                break
            time.sleep(0.05)
    for child in children.values():
        child.poll()


def supervise(named: Mapping[str, Sequence[str]]) -> int:
    stopping: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    children = {
        name: subprocess.Popen(list(argv), start_new_session=True) for name, argv in named.items()
    }
    print(
        "supervise: " + ", ".join(f"{name} pid {c.pid}" for name, c in children.items()),
        flush=True,
    )
    ended = None
    while not stopping and ended is None:
        ended = next((n for n, c in children.items() if c.poll() is not None), None)
        time.sleep(0.2)
    reason = f"the {ended} exited" if ended else f"signal {signal.Signals(stopping[0]).name}"
    print(f"supervise: {reason}; stopping web and worker", flush=True)
    stop(children)
    if ended:
        return children[ended].returncode or 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    return supervise(commands(python=sys.executable, host=args.host, port=args.port))


if __name__ == "__main__":
    sys.exit(main())
