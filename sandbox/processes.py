"""Processes of a run: find them, check they are still ours, signal them."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

# --------------------------------------------------------------------------
# Processes: find, verify, signal


@dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    start_time: str


def _read_proc(pid: int) -> _Proc | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = data[data.rfind(")") + 2 :].split()
    return _Proc(pid=pid, ppid=int(fields[1]), start_time=fields[19])


def descendants(root: int) -> list[_Proc]:
    children: dict[int, list[_Proc]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (proc := _read_proc(int(entry))) is not None:
            children.setdefault(proc.ppid, []).append(proc)
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child.pid)
    return found


def signal_verified(pid: int, sig: int, still_ours: Callable[[int], bool]) -> None:
    """Signal pid only if, once pinned by a pidfd, it is still the process we meant.

    A pid read from /proc may be reused by an unrelated process before we
    signal it; the worker is root, so a blind kill could hit anything.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        if still_ours(pid):
            signal.pidfd_send_signal(pidfd, sig)
    except OSError:
        pass
    finally:
        os.close(pidfd)


def same_start(proc: _Proc) -> Callable[[int], bool]:
    def check(pid: int) -> bool:
        now = _read_proc(pid)
        return now is not None and now.start_time == proc.start_time

    return check


def is_executable(pid: int, identity: tuple[int, int] | None) -> bool:
    if identity is None:
        return False
    try:
        info = os.stat(f"/proc/{pid}/exe")
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == identity


def try_command(command: list[str]) -> tuple[bool, str]:
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=20, env={"PATH": "/usr/bin:/bin"}, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return done.returncode == 0, done.stderr.decode("utf-8", "replace").strip()[-500:]
