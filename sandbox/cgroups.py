"""Per-run cgroups (v1 and v2): a true cap on a run's memory and on its number of tasks."""

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

# The file a child cgroup must have for a controller to limit it, by cgroup version.
_LIMIT_FILES = {
    ("memory", 1): "memory.limit_in_bytes",
    ("memory", 2): "memory.max",
    ("pids", 1): "pids.max",
    ("pids", 2): "pids.max",
}


# --------------------------------------------------------------------------
# Finding a parent to create per-run cgroups in


def cgroup_version(path: str) -> int:
    # Every v2 cgroup has cgroup.controllers; no v1 one does (not even a hierarchy's root).
    return 2 if os.path.exists(os.path.join(path, "cgroup.controllers")) else 1


def find_memory_cgroup(configured: str | None) -> str | None:
    """A cgroup folder in which we may create per-run children with a memory limit.

    By default the worker's own cgroup, so a run never escapes the limits an
    operator put on the worker (never a sibling: that could be system.slice).
    v2 is tried first; on a hybrid host (like this one) the memory controller
    is on the v1 hierarchy.
    """
    if configured:
        return configured if _cgroup_parent_usable(configured, "memory") else None
    for candidate in (_own_cgroup_dir("memory", v2=True), _own_cgroup_dir("memory", v2=False)):
        if candidate and _cgroup_parent_usable(candidate, "memory"):
            return candidate
    return None


def find_pids_cgroup(configured: str | None, memory_cgroup: str | None) -> str | None:
    """A cgroup folder in which we may create per-run children with a task limit.

    A process is in exactly one v2 cgroup: when the memory cap is a v2 cgroup, the
    task limit must be in that same cgroup (or on a v1 pids hierarchy), never in a
    second v2 cgroup, whose joining would take the run out of its memory cap."""
    memory_v2 = memory_cgroup is not None and cgroup_version(memory_cgroup) == 2
    if configured:
        if memory_v2 and cgroup_version(configured) == 2 and configured != memory_cgroup:
            return None
        return configured if _cgroup_parent_usable(configured, "pids") else None
    first = memory_cgroup if memory_v2 else _own_cgroup_dir("pids", v2=True)
    for candidate in (first, _own_cgroup_dir("pids", v2=False)):
        if candidate and _cgroup_parent_usable(candidate, "pids"):
            return candidate
    return None


def _own_cgroup_dir(controller: str, *, v2: bool) -> str | None:
    mount = _cgroup_mount(controller, v2=v2)
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
        if (v2 and controllers == "") or (not v2 and controller in controllers.split(",")):
            relative = os.path.relpath(path, mount_root) if path.startswith(mount_root) else path
            return os.path.normpath(os.path.join(mount_point, relative.lstrip("/")))
    return None


def _cgroup_mount(controller: str, *, v2: bool) -> tuple[str, str] | None:
    """(mount point, root inside the hierarchy) of the v2 tree or a v1 controller's tree."""
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
        if (v2 and fstype == "cgroup2") or (
            not v2 and fstype == "cgroup" and controller in options
        ):
            return fields[4].replace("\\040", " "), fields[3]
    return None


def _cgroup_parent_usable(parent: str, controller: str) -> bool:
    """Really create a child, check it has the controller's limit file, and move a process in."""
    version = cgroup_version(parent)
    if version == 2:
        try:
            with open(os.path.join(parent, "cgroup.subtree_control"), encoding="utf-8") as fh:
                if controller not in fh.read().split():
                    return False
        except OSError:
            return False
    probe = os.path.join(parent, f"{CGROUP_PREFIX}probe-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        os.mkdir(probe)
    except OSError:
        return False
    try:
        if not os.path.exists(os.path.join(probe, _LIMIT_FILES[controller, version])):
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


# --------------------------------------------------------------------------
# One run's cgroup


class RunCgroup:
    """One run's cgroup: created with its limits, read for what hit them, emptied, removed.

    On v1 it lives in one controller's hierarchy (a run has one per controller); on v2
    it carries every limit asked for."""

    def __init__(
        self, parent: str, *, memory_mb: int | None = None, max_tasks: int | None = None
    ) -> None:
        _sweep_stale_cgroups(parent)
        self.v1 = cgroup_version(parent) == 1
        self.path = os.path.join(parent, f"{CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.mkdir(self.path)
        try:
            if memory_mb is not None:
                self._set_memory_limit(memory_mb * MIB)
            if max_tasks is not None:
                self._write("pids.max", str(max_tasks))
        except OSError:
            _rmdir_quietly(self.path)
            raise

    @property
    def procs_file(self) -> str:
        return os.path.join(self.path, "cgroup.procs")

    def _set_memory_limit(self, limit: int) -> None:
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

    def _counter(self, name: str, key: str) -> int:
        try:
            with open(os.path.join(self.path, name), encoding="ascii") as fh:
                for line in fh:
                    field, _, value = line.partition(" ")
                    if field == key:
                        return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def oom_kills(self) -> int:
        return self._counter("memory.oom_control" if self.v1 else "memory.events", "oom_kill")

    def task_limit_hits(self) -> int:
        """How many forks or thread starts pids.max refused."""
        return self._counter("pids.events", "max")

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
        logger.error("Could not remove cgroup %s; processes still in it.", self.path)


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
