"""What this machine can enforce, probed once per process (`manage.py sandbox_check` prints it)."""

from __future__ import annotations

import functools
import glob
import os
import shutil
import stat
from dataclasses import dataclass

from sandbox.cgroups import cgroup_version, find_memory_cgroup, find_pids_cgroup
from sandbox.command import (
    bind_args,
    namespace_args,
    nested_userns_args,
    system_mount_args,
    tmpfs_args,
)
from sandbox.jobspace import job_quota_problem
from sandbox.policy import DEFAULT_UID_RANGE, SANDBOX_UID, Limits, setpriv_args
from sandbox.processes import try_command
from sandbox.runtime import SHELL, tools_binds
from sandbox.uids import LEASES

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
    # Where per-run pids cgroups are made; else a uid per run from uid_range (root only).
    pids_cgroup: str | None = None
    uid_range: tuple[int, int] | None = None
    # mount/umount, when a size-capped tmpfs can hold each run's job folder (root only).
    mount: str | None = None
    umount: str | None = None
    # Needed in strict mode: it lists the libraries the interpreter loads (sandbox/runtime.py).
    ldd: str | None = None

    @property
    def full(self) -> bool:
        return not self.missing_for_strict()

    @property
    def memory_cgroup_version(self) -> int | None:
        return None if self.memory_cgroup is None else cgroup_version(self.memory_cgroup)

    @property
    def job_quota(self) -> bool:
        return self.mount is not None and self.umount is not None

    def process_enforcement(self, *, strict: bool) -> str:
        """How a run's processes are counted apart from every other run's (PROCESS_ENFORCEMENTS)."""
        if self.pids_cgroup is not None:
            return "cgroup"
        if strict and self.is_root and self.uid_range is not None:
            return "uid"
        if not strict and self.is_root:
            return "none"  # BASIC mode runs as root, whom RLIMIT_NPROC does not limit
        return "shared_uid"

    def missing_for_strict(self) -> list[str]:
        missing = []
        if self.bubblewrap is None:
            missing.append("bubblewrap (bwrap) is missing or cannot start a sandbox here")
        if self.prlimit is None:
            missing.append("prlimit (util-linux) is missing")
        if self.is_root and self.setpriv is None:
            missing.append("setpriv (util-linux) is missing, so root cannot drop privileges")
        if self.ldd is None:
            missing.append("ldd (libc-bin) is missing, so the interpreter's libraries are unknown")
        return missing

    def describe(self) -> str:
        lines = []
        if self.full:
            who = (
                "bubblewrap as root, then setpriv to an unprivileged uid"
                if self.is_root
                else f"unprivileged bubblewrap with a user namespace, uid {SANDBOX_UID} inside"
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
        lines.append(self._describe_processes())
        if self.job_quota:
            lines.append(
                "Job folder quota: a size-capped tmpfs per run (counted in the run's memory "
                "too); the worker's disk holds a run's files only once it has ended."
            )
        else:
            lines.append(
                "Job folder quota: NONE; a run writes on the worker's disk, capped per file only."
            )
        lines.extend(self.notes)
        return "\n".join(lines)

    def _describe_processes(self) -> str:
        if self.pids_cgroup is not None:
            version = cgroup_version(self.pids_cgroup)
            return f"Process limit: a pids cgroup (v{version}) per run under {self.pids_cgroup}."
        if self.is_root and self.uid_range is not None:
            first, last = self.uid_range
            return (
                f"Process limit: RLIMIT_NPROC of a uid of its own per run ({first}-{last}, "
                f"leased under {LEASES}) in strict mode."
            )
        return (
            f"Process limit: RLIMIT_NPROC of uid {SANDBOX_UID}, SHARED by every run on this "
            "machine: one run's fork bomb can make another learner's run fail."
        )


@functools.lru_cache(maxsize=4)
def capabilities_for(
    memory_cgroup_parent: str | None = None,
    pids_cgroup_parent: str | None = None,
    uid_range: tuple[int, int] | None = DEFAULT_UID_RANGE,
) -> Capabilities:
    """This machine's capabilities, probed once per process and settings.

    A probe starts a trial sandbox (tens of milliseconds): a worker does it at start-up
    and logs the report, not once per run. The machine does not change under a worker."""
    return detect_capabilities(
        memory_cgroup_parent=memory_cgroup_parent,
        pids_cgroup_parent=pids_cgroup_parent,
        uid_range=uid_range,
    )


def capabilities_report(
    memory_cgroup_parent: str | None = None,
    pids_cgroup_parent: str | None = None,
    uid_range: tuple[int, int] | None = DEFAULT_UID_RANGE,
) -> str:
    """What this machine enforces, in lines an operator reads (sandbox_check, worker start)."""
    return capabilities_for(memory_cgroup_parent, pids_cgroup_parent, uid_range).describe()


def detect_capabilities(
    *,
    memory_cgroup_parent: str | None = None,
    pids_cgroup_parent: str | None = None,
    uid_range: tuple[int, int] | None = DEFAULT_UID_RANGE,
) -> Capabilities:
    """Probe this machine: which tools exist and whether bubblewrap really works.

    memory_cgroup_parent: a cgroup folder to create per-run cgroups in (a
    setting). Needed on cgroup v2, where a cgroup holding processes (the
    worker's own) cannot have memory-limited children: run the worker in a
    leaf, e.g. <unit>/worker, and pass <unit>. Default: the worker's own
    cgroup, which works on v1 (as here) and at a cgroup-namespace root.
    pids_cgroup_parent: the same for the pids controller (default: the worker's
    own pids cgroup, or on v2 the memory cgroup parent). uid_range: uids to lease
    one per run when no pids cgroup is usable (root, strict mode).
    """
    is_root = os.geteuid() == 0
    setpriv = _which("setpriv")
    bwrap = _which("bwrap")
    ldd = _which("ldd")
    notes: list[str] = []
    memory_cgroup = find_memory_cgroup(memory_cgroup_parent)
    if memory_cgroup_parent and memory_cgroup is None:
        notes.append(f"The memory cgroup {memory_cgroup_parent} is not usable.")
    pids_cgroup = find_pids_cgroup(pids_cgroup_parent, memory_cgroup)
    if pids_cgroup_parent and pids_cgroup is None:
        notes.append(
            f"The pids cgroup {pids_cgroup_parent} is not usable (on cgroup v2 it must be "
            "the memory cgroup's parent)."
        )
    leased = None
    # Probed even where a pids cgroup is in force: the fallback is ready, and testable.
    if is_root and setpriv and uid_range:
        leased, note = _probe_uid_range(setpriv, uid_range)
        if note:
            notes.append(note)
    quota_problem = job_quota_problem(_which("mount"), _which("umount"))
    if quota_problem:
        notes.append(f"No job folder quota: {quota_problem}.")
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
        pids_cgroup=pids_cgroup,
        uid_range=leased,
        mount=None if quota_problem else _which("mount"),
        umount=None if quota_problem else _which("umount"),
        ldd=ldd,
    )


def _which(name: str) -> str | None:
    found = shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin")
    return os.path.realpath(found) if found else None


def _probe_uid_range(
    setpriv: str, uid_range: tuple[int, int]
) -> tuple[tuple[int, int] | None, str]:
    """The range if its uids can be taken here (a leases folder, a uid the kernel maps)."""
    first, last = uid_range
    try:
        os.makedirs(LEASES, mode=0o700, exist_ok=True)
    except OSError as exc:
        return None, f"No uid per run: {LEASES} cannot be created ({exc.strerror})."
    ok, err = try_command([setpriv, *setpriv_args(first, first), "--", SHELL, "-c", ":"])
    if not ok:
        return None, f"No uid per run: uid {first} cannot be taken here ({err})."
    return (first, last), ""


@functools.lru_cache(maxsize=4)
def _probe_bubblewrap(bwrap: str, setpriv: str | None, is_root: bool) -> tuple[bool, bool, str]:
    """Start a trivial sandbox; returns (usable, nested user namespaces blocked, note)."""
    tools = tuple(t for t in (bwrap, setpriv) if t and is_root)
    try:
        binds = bind_args([(host, dest, False) for host, dest in tools_binds(tools)])
    except RuntimeError as exc:  # no ldd: the libraries to bind are unknown
        return False, False, str(exc)
    # Same tmpfs options as a real run (an old bwrap lacks --size); the inner
    # bwrap also needs a writable /tmp to build its root in.
    tmp = tmpfs_args(Limits(wall_seconds=1, cpu_seconds=1, memory_mb=64))
    base = [bwrap, *namespace_args(is_root), *system_mount_args(), *tmp, *binds, "--"]
    prefix = [setpriv, *setpriv_args(), "--"] if (is_root and setpriv) else []
    true = [SHELL, "-c", ":"]
    with_nested = [*base, *prefix, *nested_userns_args(bwrap, is_root), *true]
    ok, _ = try_command(with_nested)
    if ok:
        return True, True, ""
    without = [*base, *prefix, *true]
    ok, err = try_command(without)
    if not ok:
        return False, False, f"bubblewrap failed its self-test: {err}"
    return True, False, "Learner code could create user namespaces (nested bwrap failed)."


def nvidia_device_nodes(dev: str = "/dev") -> tuple[str, ...]:
    """The NVIDIA driver's device nodes on this machine (none on a CPU box): what a run
    needs to reach the GPUs, whose user-space libraries live beside libstdc++ in the
    folders the sandbox already binds."""
    names = [*glob.glob(f"{dev}/nvidia*"), *glob.glob(f"{dev}/nvidia-caps/*")]
    return tuple(sorted(n for n in names if stat.S_ISCHR(os.stat(n).st_mode)))
