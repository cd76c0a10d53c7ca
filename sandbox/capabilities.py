"""What this machine can enforce, probed once per process (`manage.py sandbox_check` prints it)."""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass

from sandbox.cgroups import find_memory_cgroup
from sandbox.command import namespace_args, nested_userns_args, system_mount_args, tmpfs_args
from sandbox.policy import SETPRIV_ARGS, Limits
from sandbox.processes import try_command

# --------------------------------------------------------------------------
# What this machine can do


@dataclass(frozen=True)
class Capabilities:
    bubblewrap: str | None
    setpriv: str | None
    prlimit: str | None
    is_root: bool
    memory_cgroup: str | None
    # Whether learner code is stopped from creating user namespaces.
    nested_userns_blocked: bool = False
    notes: tuple[str, ...] = ()

    @property
    def full(self) -> bool:
        return not self.missing_for_strict()

    @property
    def memory_cgroup_version(self) -> int | None:
        if self.memory_cgroup is None:
            return None
        return 1 if os.path.exists(os.path.join(self.memory_cgroup, "memory.limit_in_bytes")) else 2

    def missing_for_strict(self) -> list[str]:
        missing = []
        if self.bubblewrap is None:
            missing.append("bubblewrap (bwrap) is missing or cannot start a sandbox here")
        if self.prlimit is None:
            missing.append("prlimit (util-linux) is missing")
        if self.is_root and self.setpriv is None:
            missing.append("setpriv (util-linux) is missing, so root cannot drop privileges")
        return missing

    def describe(self) -> str:
        lines = []
        if self.full:
            who = (
                "bubblewrap as root, then setpriv to uid 65534"
                if self.is_root
                else "unprivileged bubblewrap with a user namespace, uid 65534 inside"
            )
            lines.append(f"STRICT sandbox available: {who}; loopback-only network.")
            lines.append(
                "Nested user namespaces: "
                + ("blocked." if self.nested_userns_blocked else "NOT blocked.")
            )
        else:
            lines.append(
                "STRICT sandbox UNAVAILABLE: " + "; ".join(self.missing_for_strict()) + "."
            )
            lines.append(
                "BASIC mode only: learner code is NOT isolated from the network or the "
                "file system (rlimits only)."
            )
        if self.memory_cgroup:
            lines.append(
                f"Memory cap: cgroup v{self.memory_cgroup_version} under {self.memory_cgroup}."
            )
        else:
            lines.append("Memory cap: no writable memory cgroup; RLIMIT_AS fallback (coarse).")
        lines.extend(self.notes)
        return "\n".join(lines)


@functools.lru_cache(maxsize=4)
def capabilities_for(memory_cgroup_parent: str | None = None) -> Capabilities:
    """This machine's capabilities, probed once per process and cgroup parent.

    A probe starts a trial sandbox (tens of milliseconds): a worker does it at start-up
    and logs the report, not once per run. The machine does not change under a worker."""
    return detect_capabilities(memory_cgroup_parent=memory_cgroup_parent)


def capabilities_report(memory_cgroup_parent: str | None = None) -> str:
    """What this machine enforces, in lines an operator reads (sandbox_check, worker start)."""
    return capabilities_for(memory_cgroup_parent).describe()


def detect_capabilities(*, memory_cgroup_parent: str | None = None) -> Capabilities:
    """Probe this machine: which tools exist and whether bubblewrap really works.

    memory_cgroup_parent: a cgroup folder to create per-run cgroups in (a
    setting). Needed on cgroup v2, where a cgroup holding processes (the
    worker's own) cannot have memory-limited children: run the worker in a
    leaf, e.g. <unit>/worker, and pass <unit>. Default: the worker's own
    cgroup, which works on v1 (as here) and at a cgroup-namespace root.
    """
    is_root = os.geteuid() == 0
    setpriv = _which("setpriv")
    bwrap = _which("bwrap")
    notes: list[str] = []
    memory_cgroup = find_memory_cgroup(memory_cgroup_parent)
    if memory_cgroup_parent and memory_cgroup is None:
        notes.append(f"The memory cgroup {memory_cgroup_parent} is not usable.")
    nested = False
    if bwrap is not None:
        usable, nested, note = _probe_bubblewrap(bwrap, setpriv, is_root)
        if note:
            notes.append(note)
        if not usable:
            bwrap = None
    return Capabilities(
        bubblewrap=bwrap,
        setpriv=setpriv,
        prlimit=_which("prlimit"),
        is_root=is_root,
        memory_cgroup=memory_cgroup,
        nested_userns_blocked=nested,
        notes=tuple(notes),
    )


def _which(name: str) -> str | None:
    found = shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin")
    return os.path.realpath(found) if found else None


@functools.lru_cache(maxsize=4)
def _probe_bubblewrap(bwrap: str, setpriv: str | None, is_root: bool) -> tuple[bool, bool, str]:
    """Start a trivial sandbox; returns (usable, nested user namespaces blocked, note)."""
    true = _which("true") or "/usr/bin/true"
    # Same tmpfs options as a real run (an old bwrap lacks --size); the inner
    # bwrap also needs a writable /tmp to build its root in.
    tmp = tmpfs_args(Limits(wall_seconds=1, cpu_seconds=1, memory_mb=64))
    base = [bwrap, *namespace_args(is_root), *system_mount_args(), *tmp, "--"]
    prefix = [setpriv, *SETPRIV_ARGS, "--"] if (is_root and setpriv) else []
    with_nested = [*base, *prefix, *nested_userns_args(bwrap, is_root), true]
    ok, _ = try_command(with_nested)
    if ok:
        return True, True, ""
    without = [*base, *prefix, true]
    ok, err = try_command(without)
    if not ok:
        return False, False, f"bubblewrap failed its self-test: {err}"
    return True, False, "Learner code could create user namespaces (nested bwrap failed)."
