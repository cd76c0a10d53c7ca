"""Memory cgroups (v1 and v2): one child cgroup per run, with a true cap on its memory."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
import uuid

from sandbox.policy import CGROUP_PREFIX, MIB
from sandbox.processes import signal_verified, try_command

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------
# Memory cgroups (v1 and v2)


def find_memory_cgroup(configured: str | None) -> str | None:
    """A cgroup folder in which we may create per-run children with a memory limit.

    By default the worker's own cgroup, so a run never escapes the limits an
    operator put on the worker (never a sibling: that could be system.slice).
    v2 is tried first; on a hybrid host (like this one) the memory controller
    is on the v1 hierarchy.
    """
    if configured:
        return configured if _cgroup_parent_usable(configured) else None
    for candidate in (_own_cgroup_dir(v2=True), _own_cgroup_dir(v2=False)):
        if candidate and _cgroup_parent_usable(candidate):
            return candidate
    return None


def _own_cgroup_dir(*, v2: bool) -> str | None:
    mount = _cgroup_mount(v2=v2)
    if mount is None:
        return None
    mount_point, mount_root = mount
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if (v2 and controllers == "") or (not v2 and "memory" in controllers.split(",")):
            relative = os.path.relpath(path, mount_root) if path.startswith(mount_root) else path
            return os.path.normpath(os.path.join(mount_point, relative.lstrip("/")))
    return None


def _cgroup_mount(*, v2: bool) -> tuple[str, str] | None:
    """(mount point, root inside the hierarchy) of the v2 tree or the v1 memory tree."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype, options = tail[0], tail[2].split(",")
        if (v2 and fstype == "cgroup2") or (not v2 and fstype == "cgroup" and "memory" in options):
            return fields[4].replace("\\040", " "), fields[3]
    return None


def _cgroup_parent_usable(parent: str) -> bool:
    """Really create a child, check it has a memory limit file, and move a process in."""
    v1 = os.path.exists(os.path.join(parent, "memory.limit_in_bytes"))
    if not v1:
        try:
            with open(os.path.join(parent, "cgroup.subtree_control"), encoding="utf-8") as fh:
                if "memory" not in fh.read().split():
                    return False
        except OSError:
            return False
    probe = os.path.join(parent, f"{CGROUP_PREFIX}probe-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        os.mkdir(probe)
    except OSError:
        return False
    try:
        limit_file = "memory.limit_in_bytes" if v1 else "memory.max"
        if not os.path.exists(os.path.join(probe, limit_file)):
            return False
        joined, _ = try_command(["/bin/sh", "-c", 'echo $$ > "$0"', f"{probe}/cgroup.procs"])
        return joined
    finally:
        _rmdir_quietly(probe)


def _rmdir_quietly(path: str) -> bool:
    try:
        os.rmdir(path)
    except OSError:
        return False
    return True


class MemoryCgroup:
    """One run's cgroup: created with a limit, read for OOM kills, emptied, removed."""

    def __init__(self, parent: str, limit_mb: int) -> None:
        _sweep_stale_cgroups(parent)
        self.v1 = os.path.exists(os.path.join(parent, "memory.limit_in_bytes"))
        self.path = os.path.join(parent, f"{CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.mkdir(self.path)
        try:
            self._set_limit(limit_mb * MIB)
        except OSError:
            _rmdir_quietly(self.path)
            raise

    @property
    def procs_file(self) -> str:
        return os.path.join(self.path, "cgroup.procs")

    def _set_limit(self, limit: int) -> None:
        if self.v1:
            self._write("memory.limit_in_bytes", str(limit))
            # Cap memory+swap too, or swap would let a run exceed its limit.
            self._write_optional("memory.memsw.limit_in_bytes", str(limit))
        else:
            self._write("memory.max", str(limit))
            self._write_optional("memory.swap.max", "0")

    def _write(self, name: str, value: str) -> None:
        with open(os.path.join(self.path, name), "w", encoding="ascii") as fh:
            fh.write(value)

    def _write_optional(self, name: str, value: str) -> None:
        with contextlib.suppress(OSError):
            self._write(name, value)

    def oom_kills(self) -> int:
        name = "memory.oom_control" if self.v1 else "memory.events"
        try:
            with open(os.path.join(self.path, name), encoding="ascii") as fh:
                for line in fh:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def pids(self) -> list[int]:
        try:
            with open(self.procs_file, encoding="ascii") as fh:
                return [int(line) for line in fh if line.strip()]
        except OSError:
            return []

    def kill_all(self) -> None:
        kill_file = os.path.join(self.path, "cgroup.kill")
        if not self.v1 and os.path.exists(kill_file):
            self._write_optional("cgroup.kill", "1")
            return
        for pid in self.pids():
            signal_verified(pid, signal.SIGKILL, lambda p: p in self.pids())

    def remove(self) -> None:
        """Kill what is left, wait for the cgroup to empty, then delete it."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            self.kill_all()
            if _rmdir_quietly(self.path):
                return
            time.sleep(0.05)
        logger.error("Could not remove memory cgroup %s; processes still in it.", self.path)


def _sweep_stale_cgroups(parent: str) -> None:
    """Remove run cgroups left behind by workers that died (their pid is gone)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        if not name.startswith(CGROUP_PREFIX) or name.startswith(f"{CGROUP_PREFIX}probe-"):
            continue
        owner = name[len(CGROUP_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            _rmdir_quietly(os.path.join(parent, name))
