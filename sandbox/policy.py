"""What a sandboxed run may do: its mode, its limits, and the one policy object a launch takes."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

logger = logging.getLogger(__name__)

SANDBOX_UID = 65534
SANDBOX_GID = 65534
JOB_MOUNT = "/job"
# The interpreter's prefix inside the sandbox, wherever it lives on the host, and the
# virtualenv made again on top of it (sandbox/runtime.py).
PYTHON_MOUNT = "/python"
VENV_MOUNT = "/venv"
MAX_LINE_BYTES = 64 * 1024
MAX_STDOUT_BYTES = 50 * 1024 * 1024
STDERR_TAIL_BYTES = 20 * 1024
KILL_GRACE_SECONDS = 5.0
# After the main process exits, how long to wait for the pipes to close. In
# STRICT mode the pid namespace dies with it; in BASIC mode an escaped
# background process may hold the pipes open forever.
DRAIN_SECONDS = 2.0
# RLIMIT_CPU soft limit sends SIGXCPU; the hard limit (a little later) SIGKILLs
# a program that catches SIGXCPU.
CPU_HARD_MARGIN_SECONDS = 5
DEFAULT_THREADS = max(1, min(4, os.cpu_count() or 1))
CGROUP_PREFIX = "llm-academy-sandbox-"

OUTCOMES = (
    "ok",
    "exited",
    "timeout",
    "memory",
    "cpu",
    "cancelled",
    "output_limit",
    "disk",
    "processes",
)
# The run filled its own job folder or process limit: the host saw it, so it is the
# learner's doing even when their code (or the engine in its process) reported something else.
QUOTA_OUTCOMES = frozenset({"disk", "processes"})
# The outcomes where a limit stopped the program: its own doing, not the platform's.
LIMIT_OUTCOMES = frozenset({"timeout", "memory", "cpu", "output_limit"})
MEMORY_ENFORCEMENTS = ("cgroup", "rlimit_as", "none")
# cgroup: a pids cgroup per run. uid: a uid of its own per run, so RLIMIT_NPROC counts only
# that run. shared_uid: RLIMIT_NPROC of one uid every run on the machine shares.
# none: BASIC mode as root, where RLIMIT_NPROC does not apply.
PROCESS_ENFORCEMENTS = ("cgroup", "uid", "shared_uid", "none")
# tmpfs: the job folder is a size-capped tmpfs during the run. none: the worker's disk.
DISK_ENFORCEMENTS = ("tmpfs", "none")
# Tasks of the sandbox itself in a run's pids cgroup (bubblewrap, its pid 1, the nested
# bubblewrap): the learner's program keeps Limits.max_processes, itself included.
PLATFORM_TASKS = 3
# A uid of its own per concurrent run, where no pids cgroup is writable (a setting
# overrides it). Debian reserves 65000-65533; no account may use these uids.
DEFAULT_UID_RANGE = (65000, 65255)
# Machine-wide state of the sandbox (root only): uid leases, job-folder mount points.
RUNTIME_DIR = "/run/llm-academy-sandbox"
# Files a job folder may hold per MB of its quota (tmpfs nr_inodes): an inode costs the
# kernel memory that the size cap does not count.
JOB_FILES_PER_MB = 16
MIN_JOB_FILES = 1024

MIB = 1024 * 1024
# System folders the program may read; never writable, never the host's /etc.
SYSTEM_TOP_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
# Sandbox paths a caller's ro_binds may not cover or sit under.
RESERVED_DESTS = (
    "/usr",
    "/proc",
    "/dev",
    "/tmp",  # noqa: S108 - the sandbox's own tmpfs, not the host's
    "/etc",
    JOB_MOUNT,
    PYTHON_MOUNT,
    VENV_MOUNT,
    *(f"/{name}" for name in SYSTEM_TOP_DIRS),
)
# Inside the sandbox these are private tmpfs mounts, not the host's shared ones.
SANDBOX_TMP = "/tmp"  # noqa: S108
SANDBOX_SHM = "/dev/shm"  # noqa: S108


def setpriv_args(uid: int = SANDBOX_UID, gid: int = SANDBOX_GID) -> list[str]:
    return [
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
    ]


# Stderr markers of an allocation failure under RLIMIT_AS (no OOM killer there).
ALLOCATION_FAILURES = ("MemoryError", "std::bad_alloc", "can't allocate memory")
# Stderr markers of a fork or thread refused at RLIMIT_NPROC (no counter to read there).
PROCESS_LIMIT_FAILURES = ("can't start new thread", "Resource temporarily unavailable")


class SandboxMode(StrEnum):
    STRICT = "strict"
    BASIC = "basic"


@dataclass(frozen=True)
class Limits:
    wall_seconds: int
    cpu_seconds: int
    memory_mb: int
    file_size_mb: int = 512
    max_processes: int = 64
    open_files: int = 256
    # The job folder's quota (a size-capped tmpfs where the worker is root).
    disk_mb: int = 1024

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if getattr(self, field.name) <= 0:
                raise ValueError(f"Limits.{field.name} must be positive")


@dataclass(frozen=True)
class SandboxPolicy:
    """Everything a run may do, in one object: the caller builds it from its settings and
    the lab, and the sandbox enforces it. The program and its callbacks are given apart."""

    mode: SandboxMode
    limits: Limits
    job_dir: str
    # host path -> path inside the sandbox, read-only (the engine, the base model).
    ro_binds: Mapping[str, str] = dataclasses.field(default_factory=dict)
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    cwd_inside: str = JOB_MOUNT
    # Where per-run memory cgroups are made (None: the worker's own cgroup).
    memory_cgroup_parent: str | None = None
    # Where per-run pids cgroups are made (None: the worker's own pids cgroup, or on
    # cgroup v2 the memory cgroup parent).
    pids_cgroup_parent: str | None = None
    # Uids (first, last) leased one per concurrent run where no pids cgroup is writable.
    uid_range: tuple[int, int] | None = DEFAULT_UID_RANGE
    # Host device nodes the program may open besides bubblewrap's minimal /dev (a GPU's
    # /dev/nvidia*): bound at their own paths, the STRICT sandbox's only way to a GPU.
    devices: tuple[str, ...] = ()


class SandboxError(RuntimeError):
    """The platform could not run the sandbox (not the learner's fault)."""


class SandboxUnavailable(SandboxError):
    """STRICT mode was requested but the full sandbox cannot run here."""


class UnsafeJobFile(Exception):
    """A file in a job folder is not a plain, bounded, non-linked file."""
