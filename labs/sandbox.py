"""Run untrusted learner code in a sandbox.

Plain Python, no Django: the worker reads the settings and passes them in, so
this module can be tested (and reasoned about) on its own.

STRICT mode, as root (a Celery worker on a server)::

    sh: join a fresh memory cgroup            (when one is writable)
    prlimit: cpu, fsize, nofile, nproc, core  (+ address space without a cgroup)
    bwrap (root, no user namespace)           mounts the sandbox, new pid/net/ipc/uts
      setpriv -> uid/gid 65534, no groups, no capabilities, no_new_privs
        bwrap (unprivileged, user namespace)  only to forbid nested user namespaces
          sh: report "started", stdin -> /dev/null
            the learner's program

The outer bubblewrap runs as root without a user namespace because the
interpreter lives under /root (mode 700): only root can bind it, and a
bubblewrap started as root *with* a user namespace maps the sandbox to host
uid 0 (SANDBOX.md, pitfall 2). So privileges are dropped inside, after the
mounts, with setpriv. A second, unprivileged bubblewrap then sets
``--disable-userns``: without it the learner could create user namespaces,
the usual door to kernel exploits (nf_tables and friends).

STRICT mode without root (a developer's laptop): one unprivileged bubblewrap
with its own user namespace does all of the above.

BASIC mode (no bubblewrap): rlimits, an empty environment, the job folder as
working directory, and a memory cgroup where writable. It isolates neither
the network nor the file system, and says so loudly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import logging
import os
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

__all__ = [
    "Capabilities",
    "Limits",
    "SandboxError",
    "SandboxMode",
    "SandboxResult",
    "SandboxUnavailable",
    "UnsafeJobFile",
    "detect_capabilities",
    "open_job_file",
    "run_sandboxed",
]

logger = logging.getLogger(__name__)

SANDBOX_UID = 65534
SANDBOX_GID = 65534
JOB_MOUNT = "/job"
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

OUTCOMES = ("ok", "exited", "timeout", "memory", "cpu", "cancelled", "output_limit")
MEMORY_ENFORCEMENTS = ("cgroup", "rlimit_as", "none")

_MIB = 1024 * 1024
# System folders the program may read; never writable, never the host's /etc.
_SYSTEM_TOP_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
# Sandbox paths a caller's ro_binds may not cover or sit under.
_RESERVED_DESTS = (
    "/usr",
    "/proc",
    "/dev",
    "/tmp",  # noqa: S108 - the sandbox's own tmpfs, not the host's
    "/etc",
    JOB_MOUNT,
    *(f"/{name}" for name in _SYSTEM_TOP_DIRS),
)
# Inside the sandbox these are private tmpfs mounts, not the host's shared ones.
_SANDBOX_TMP = "/tmp"  # noqa: S108
_SANDBOX_SHM = "/dev/shm"  # noqa: S108
_SETPRIV_ARGS = (
    f"--reuid={SANDBOX_UID}",
    f"--regid={SANDBOX_GID}",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
)

# Stderr markers of an allocation failure under RLIMIT_AS (no OOM killer there).
_ALLOCATION_FAILURES = ("MemoryError", "std::bad_alloc", "can't allocate memory")


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

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if getattr(self, field.name) <= 0:
                raise ValueError(f"Limits.{field.name} must be positive")


class SandboxError(RuntimeError):
    """The platform could not run the sandbox (not the learner's fault)."""


class SandboxUnavailable(SandboxError):
    """STRICT mode was requested but the full sandbox cannot run here."""


class UnsafeJobFile(Exception):
    """A file in a job folder is not a plain, bounded, non-linked file."""


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
    memory_cgroup = _find_memory_cgroup(memory_cgroup_parent)
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
    tmp = _tmpfs_args(Limits(wall_seconds=1, cpu_seconds=1, memory_mb=64))
    base = [bwrap, *_namespace_args(is_root), *_system_mount_args(), *tmp, "--"]
    prefix = [setpriv, *_SETPRIV_ARGS, "--"] if (is_root and setpriv) else []
    with_nested = [*base, *prefix, *_nested_userns_args(bwrap, is_root), true]
    ok, _ = _try_command(with_nested)
    if ok:
        return True, True, ""
    without = [*base, *prefix, true]
    ok, err = _try_command(without)
    if not ok:
        return False, False, f"bubblewrap failed its self-test: {err}"
    return True, False, "Learner code could create user namespaces (nested bwrap failed)."


def _try_command(command: list[str]) -> tuple[bool, str]:
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=20, env={"PATH": "/usr/bin:/bin"}, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return done.returncode == 0, done.stderr.decode("utf-8", "replace").strip()[-500:]


# --------------------------------------------------------------------------
# Memory cgroups (v1 and v2)


def _find_memory_cgroup(configured: str | None) -> str | None:
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
        joined, _ = _try_command(["/bin/sh", "-c", 'echo $$ > "$0"', f"{probe}/cgroup.procs"])
        return joined
    finally:
        _rmdir_quietly(probe)


def _rmdir_quietly(path: str) -> bool:
    try:
        os.rmdir(path)
    except OSError:
        return False
    return True


class _MemoryCgroup:
    """One run's cgroup: created with a limit, read for OOM kills, emptied, removed."""

    def __init__(self, parent: str, limit_mb: int) -> None:
        _sweep_stale_cgroups(parent)
        self.v1 = os.path.exists(os.path.join(parent, "memory.limit_in_bytes"))
        self.path = os.path.join(parent, f"{CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.mkdir(self.path)
        try:
            self._set_limit(limit_mb * _MIB)
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
            _signal_verified(pid, signal.SIGKILL, lambda p: p in self.pids())

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


def _descendants(root: int) -> list[_Proc]:
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


def _signal_verified(pid: int, sig: int, still_ours: Callable[[int], bool]) -> None:
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


def _same_start(proc: _Proc) -> Callable[[int], bool]:
    def check(pid: int) -> bool:
        now = _read_proc(pid)
        return now is not None and now.start_time == proc.start_time

    return check


def _is_executable(pid: int, identity: tuple[int, int] | None) -> bool:
    if identity is None:
        return False
    try:
        info = os.stat(f"/proc/{pid}/exe")
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == identity


# --------------------------------------------------------------------------
# Output: line splitting, caps, tails


class _StdoutLines:
    """Split stdout into lines for the callback; cap each line and the total."""

    def __init__(self, on_line: Callable[[str], None], max_total: int) -> None:
        self._on_line = on_line
        self._max_total = max_total
        self._line = bytearray()
        self.total = 0
        self.muted = False

    @property
    def over_limit(self) -> bool:
        return self.total > self._max_total

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        if self.muted:
            return
        start = 0
        while (newline := data.find(b"\n", start)) != -1:
            self._keep(data[start:newline])
            self._emit()
            start = newline + 1
        self._keep(data[start:])

    def _keep(self, chunk: bytes) -> None:
        room = MAX_LINE_BYTES - len(self._line)
        if room > 0:
            self._line += chunk[:room]

    def _emit(self) -> None:
        text = self._line.decode("utf-8", errors="replace").removesuffix("\r")
        self._line.clear()
        self._on_line(text)

    def flush(self) -> None:
        if self._line and not self.muted:
            self._emit()


class _Tail:
    """Keep only the last `limit` bytes of a stream."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._data = bytearray()
        self.truncated = False

    def feed(self, data: bytes) -> None:
        self._data += data
        if len(self._data) > 2 * self._limit:
            del self._data[: -self._limit]
            self.truncated = True

    def text(self) -> str:
        data = bytes(self._data[-self._limit :])
        if self.truncated or len(self._data) > self._limit:
            # Start at a line boundary: a cut line (or UTF-8 sequence) only confuses.
            data = b"[... earlier output cut ...]\n" + data[data.find(b"\n") + 1 :]
        return data.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------
# Building the command


def _namespace_args(is_root: bool) -> list[str]:
    common = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
    common += ["--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent"]
    # --new-session: the program cannot push keystrokes to a terminal (TIOCSTI).
    common.append("--new-session")
    if is_root:
        # No user namespace (it would map the sandbox to host uid 0); keep only
        # what setpriv needs to drop to 65534, which it then drops too.
        keep = ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
        return [*common, "--cap-drop", "ALL", *keep]
    uid = ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID)]
    return [*common, "--unshare-user", "--disable-userns", *uid, "--cap-drop", "ALL"]


def _started_shim(cwd: str) -> list[str]:
    """Enter cwd, write one byte to the "started" pipe (our stdin), then run the
    program with a /dev/null stdin. A run that ends before this byte arrives
    never reached the learner's code: the platform's fault, not the learner's.
    The cd happens here, as uid 65534, because root without CAP_DAC_OVERRIDE
    (the outer bwrap) cannot enter the job folder, which is 0700 and 65534's."""
    script = 'cd "$0" && printf . >&0 && exec "$@" </dev/null'
    return ["/bin/sh", "-c", script, cwd]


def _nested_userns_args(bwrap: str, is_root: bool) -> list[str]:
    """As root, a second (unprivileged) bwrap whose only job is --disable-userns."""
    if not is_root:
        return []  # the single unprivileged bwrap already passed --disable-userns
    return [
        bwrap,
        "--unshare-user",
        "--disable-userns",
        "--assert-userns-disabled",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_GID),
        "--dev-bind",
        "/",
        "/",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--",
    ]


def _system_mount_args() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _SYSTEM_TOP_DIRS:
        host = f"/{name}"
        if os.path.islink(host):
            args += ["--symlink", os.readlink(host), host]  # merged /usr: lib -> usr/lib
        elif os.path.isdir(host):
            args += ["--ro-bind", host, host]
    args += ["--perms", "0755", "--dir", "/etc"]
    for path in _ETC_FILES:
        args += ["--ro-bind-try", path, path]
    return [*args, "--proc", "/proc", "--dev", "/dev"]


def _interpreter_dirs(executable: str) -> list[str]:
    """Host folders argv[0] needs: its venv and the base Python the venv points at."""
    bin_dir = os.path.dirname(executable)
    dirs = [os.path.dirname(os.path.realpath(executable))]
    venv = os.path.dirname(bin_dir)
    config = os.path.join(venv, "pyvenv.cfg")
    if os.path.exists(config):
        dirs.append(venv)
        with open(config, encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition("=")
                if key.strip() == "home":
                    dirs.append(os.path.dirname(os.path.realpath(value.strip())))
    # bin/python -> its prefix (lib/pythonX.Y lives beside bin/)
    dirs = [os.path.dirname(d) if os.path.basename(d) == "bin" else d for d in dirs]
    return _outermost([d for d in dirs if not _is_under(d, "/usr")])


def _is_under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _outermost(paths: list[str]) -> list[str]:
    unique = sorted(set(paths), key=len)
    return [p for i, p in enumerate(unique) if not any(_is_under(p, q) for q in unique[:i])]


def _bind_args(binds: list[tuple[str, str, bool]]) -> list[str]:
    """Mount (host, dest, writable) binds, parents first.

    bubblewrap run as root creates missing parent folders with mode 0700,
    which uid 65534 cannot cross (seen here for /root/.pyenv/...): create
    them first, world-traversable.
    """
    binds = sorted(binds, key=lambda bind: bind[1].count("/"))
    dests = [dest for _, dest, _ in binds]
    parents: list[str] = []
    for dest in dests:
        for parent in reversed(PurePosixPath(dest).parents):
            name = str(parent)
            if name != "/" and name not in parents and not any(_is_under(name, d) for d in dests):
                parents.append(name)
    args: list[str] = []
    for parent in parents:
        args += ["--perms", "0755", "--dir", parent]
    for host, dest, writable in binds:
        args += ["--bind" if writable else "--ro-bind", host, dest]
    return args


def _tmpfs_args(limits: Limits) -> list[str]:
    # Sized: under RLIMIT_AS a tmpfs would otherwise be a way around the cap.
    size = str(max(64, limits.memory_mb // 2) * _MIB)
    args = []
    for dest in (_SANDBOX_TMP, _SANDBOX_SHM):  # DataLoader workers share tensors in /dev/shm
        args += ["--perms", "1777", "--size", size, "--tmpfs", dest]
    return args


def _rlimit_args(prlimit: str, limits: Limits, address_space_mb: int | None) -> list[str]:
    args = [
        prlimit,
        f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + CPU_HARD_MARGIN_SECONDS}",
        f"--fsize={limits.file_size_mb * _MIB}",
        f"--nofile={limits.open_files}",
        f"--nproc={limits.max_processes}",
        "--core=0",
    ]
    if address_space_mb is not None:
        args.append(f"--as={address_space_mb * _MIB}")
    return [*args, "--"]


def _address_space_fallback_mb(limits: Limits) -> int:
    """RLIMIT_AS counts reserved address space, not use: import torch reserves
    ~768 MB and a MiniLM run 1.5-2.5 GB (SANDBOX.md), so the bound is generous."""
    return max(2 * limits.memory_mb, limits.memory_mb + 2048)


def _sandbox_env(
    *, home: str, cache: str, bin_dir: str, extra: Mapping[str, str]
) -> dict[str, str]:
    """`env -i` plus what Python and Hugging Face need offline. Nothing from the worker:
    code inside can read its ancestors' environment from /proc/1/environ."""
    threads = str(DEFAULT_THREADS)
    env = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "USER": "sandbox",  # getpass.getuser() (torch caches) reads these first
        "LOGNAME": "sandbox",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",  # progress lines must arrive as they are printed
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HOME": f"{cache}/huggingface",
        "XDG_CACHE_HOME": cache,
        "MPLCONFIGDIR": f"{cache}/matplotlib",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
    }
    env.update(extra)
    return env


def _validate_binds(ro_binds: Mapping[str, str]) -> list[tuple[str, str, bool]]:
    binds = []
    for host, dest in ro_binds.items():
        norm = os.path.normpath(dest)
        if not os.path.isabs(dest) or norm == "/" or ".." in PurePosixPath(dest).parts:
            raise ValueError(f"ro_binds destination {dest!r} must be an absolute path below /")
        if any(_is_under(norm, r) or _is_under(r, norm) for r in _RESERVED_DESTS):
            raise ValueError(f"ro_binds destination {dest!r} overlaps a system path")
        if not os.path.exists(host):
            raise ValueError(f"ro_binds source {host!r} does not exist")
        binds.append((os.path.realpath(host), norm, False))
    return binds


def _prepare_job_dir(job_dir: str, is_root: bool) -> None:
    """Give the job folder to uid 65534 so the program can write there.

    lchown, never following links: on a reused folder the learner may have
    planted symlinks to host files (Judge0 CVE-2024-28185).
    """
    if not is_root:
        return  # without root, sandbox uid 65534 maps to our own uid
    os.chown(job_dir, SANDBOX_UID, SANDBOX_GID)
    os.chmod(job_dir, 0o700)
    for root, dirs, files in os.walk(job_dir):
        for name in dirs + files:
            os.chown(os.path.join(root, name), SANDBOX_UID, SANDBOX_GID, follow_symlinks=False)


def _host_path_translator(job_dir: str, binds: list[tuple[str, str, bool]]) -> Callable[[str], str]:
    """BASIC mode has no mount namespace: rewrite sandbox paths (/job/..., each
    ro_binds destination and its matching parents, e.g. /code for
    labs -> /code/labs) to host paths, so callers pass the same argv in both modes."""
    mapping = {JOB_MOUNT: job_dir}
    for host, dest, _ in binds:
        mapping[dest] = host
        while os.path.basename(dest) == os.path.basename(host) and dest.count("/") > 1:
            dest, host = os.path.dirname(dest), os.path.dirname(host)
            mapping.setdefault(dest, host)
    ordered = sorted(mapping.items(), key=lambda item: -len(item[0]))

    def translate_one(value: str) -> str:
        for dest, host in ordered:
            if _is_under(value, dest):
                return host + value[len(dest) :]
        return value

    def translate(value: str) -> str:
        return ":".join(translate_one(part) for part in value.split(":"))

    return translate


# --------------------------------------------------------------------------
# Results


@dataclass
class SandboxResult:
    returncode: int
    outcome: str  # one of OUTCOMES
    stderr_tail: str
    wall_seconds: float
    mode: SandboxMode
    memory_enforcement: str  # one of MEMORY_ENFORCEMENTS
    detail: str = ""  # one sentence for the learner

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def _describe_outcome(outcome: str, returncode: int, limits: Limits) -> str:
    if outcome == "exited":
        sig = _death_signal(returncode)
        if sig is not None:
            return f"The program was killed by signal {signal.Signals(sig).name}."
        return f"The program exited with status {returncode}."
    messages = {
        "ok": "The program finished successfully.",
        "timeout": f"The run took longer than its {limits.wall_seconds} s time limit "
        "and was stopped.",
        "memory": f"The run used more than its {limits.memory_mb} MB memory limit and was stopped.",
        "cpu": f"The run used more than its {limits.cpu_seconds} s CPU-time limit and was stopped.",
        "cancelled": "The run was cancelled.",
        "output_limit": f"The program printed more than {MAX_STDOUT_BYTES // _MIB} MB "
        "to standard output and was stopped.",
    }
    return messages[outcome]


def _death_signal(returncode: int) -> int | None:
    """The signal that killed the program: -N from Python, 128+N from bwrap or sh."""
    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else None
    if number is None or number not in signal.valid_signals():
        return None
    return number


# --------------------------------------------------------------------------
# Running


@dataclass
class _Launch:
    command: list[str]
    env: dict[str, str]
    cwd: str
    mode: SandboxMode
    memory_enforcement: str
    cgroup: _MemoryCgroup | None
    # STRICT: SIGTERM goes to the learner's processes, never to bubblewrap
    # (its death SIGKILLs the whole sandbox at once, leaving no grace period).
    bwrap_identity: tuple[int, int] | None
    preexec: Callable[[], None] | None = None


def run_sandboxed(
    *,
    argv: list[str],
    job_dir: str,
    ro_binds: Mapping[str, str] | None = None,
    limits: Limits,
    mode: SandboxMode,
    env: Mapping[str, str] | None = None,
    cwd_inside: str = JOB_MOUNT,
    on_stdout_line: Callable[[str], None] = lambda line: None,
    should_stop: Callable[[], bool] = lambda: False,
    poll_seconds: float = 0.5,
    kill_grace_seconds: float = KILL_GRACE_SECONDS,
    max_stdout_bytes: int = MAX_STDOUT_BYTES,
    capabilities: Capabilities | None = None,
) -> SandboxResult:
    """Run argv (argv[0]: an absolute path, e.g. the venv's python) sandboxed.

    Raises SandboxUnavailable (STRICT requested, cannot run here) or
    SandboxError (the sandbox failed before the program started). Everything
    the program itself does is reported in the result's outcome.
    """
    if not argv or not os.path.isabs(argv[0]):
        raise ValueError("argv[0] must be an absolute path to the program")
    job_dir = os.path.abspath(job_dir)
    if not os.path.isdir(job_dir):
        raise ValueError(f"job_dir {job_dir!r} is not a directory")
    binds = _validate_binds(ro_binds or {})
    # A missing program would fail inside as exit 127: the learner's fault in
    # appearance, a configuration error in fact.
    if not os.access(_host_path_translator(job_dir, binds)(argv[0]), os.X_OK):
        raise ValueError(f"argv[0] {argv[0]!r} is not an executable on this machine")
    caps = capabilities or detect_capabilities()
    mode = SandboxMode(mode)
    if mode is SandboxMode.STRICT and not caps.full:
        raise SandboxUnavailable(
            "The strict sandbox cannot run here: " + "; ".join(caps.missing_for_strict()) + "."
        )
    if should_stop():
        return SandboxResult(0, "cancelled", "", 0.0, mode, "none", detail="The run was cancelled.")
    cgroup = _MemoryCgroup(caps.memory_cgroup, limits.memory_mb) if caps.memory_cgroup else None
    try:
        if mode is SandboxMode.STRICT:
            launch = _strict_launch(
                argv, job_dir, binds, limits, env or {}, cwd_inside, caps, cgroup
            )
        else:
            launch = _basic_launch(argv, job_dir, binds, limits, env or {}, caps, cgroup)
        supervisor = _Supervisor(
            launch,
            limits=limits,
            on_stdout_line=on_stdout_line,
            should_stop=should_stop,
            poll_seconds=poll_seconds,
            kill_grace_seconds=kill_grace_seconds,
            max_stdout_bytes=max_stdout_bytes,
        )
        return supervisor.run()
    finally:
        if cgroup is not None:
            cgroup.remove()


def _cgroup_join_args(cgroup: _MemoryCgroup | None) -> list[str]:
    # The shell joins the cgroup, then execs the rest: every process of the
    # run is inside before any of them allocates.
    if cgroup is None:
        return []
    return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', cgroup.procs_file]


def _strict_launch(
    argv: list[str],
    job_dir: str,
    binds: list[tuple[str, str, bool]],
    limits: Limits,
    env: Mapping[str, str],
    cwd_inside: str,
    caps: Capabilities,
    cgroup: _MemoryCgroup | None,
) -> _Launch:
    assert caps.bubblewrap is not None and caps.prlimit is not None
    _prepare_job_dir(job_dir, caps.is_root)
    tools = [t for t in (caps.bubblewrap, caps.setpriv) if t and not _is_under(t, "/usr")]
    runtime = [(d, d, False) for d in _interpreter_dirs(argv[0]) + tools]
    mounts = [
        *_system_mount_args(),
        # The tmpfs first: a checkout (and so its venv) may itself live under /tmp,
        # and a tmpfs mounted after the binds would hide them.
        *_tmpfs_args(limits),
        *_bind_args([*runtime, *binds, (job_dir, JOB_MOUNT, True)]),
        "--remount-ro",
        "/",
    ]
    inside: list[str] = []
    if caps.is_root:
        inside = [caps.setpriv or "setpriv", *_SETPRIV_ARGS, "--"]
        if caps.nested_userns_blocked:
            inside += _nested_userns_args(caps.bubblewrap, True)
    memory_enforcement = "cgroup" if cgroup else "rlimit_as"
    address_space = None if cgroup else _address_space_fallback_mb(limits)
    bwrap_stat = os.stat(caps.bubblewrap)
    command = [
        *_cgroup_join_args(cgroup),
        *_rlimit_args(caps.prlimit, limits, address_space),
        caps.bubblewrap,
        *_namespace_args(caps.is_root),
        *mounts,
        "--",
        *inside,
        *_started_shim(cwd_inside),
        *argv,
    ]
    sandbox_env = _sandbox_env(
        home=JOB_MOUNT, cache=f"{_SANDBOX_TMP}/cache", bin_dir=os.path.dirname(argv[0]), extra=env
    )
    return _Launch(
        command=command,
        env=sandbox_env,
        cwd="/",
        mode=SandboxMode.STRICT,
        memory_enforcement=memory_enforcement,
        cgroup=cgroup,
        bwrap_identity=(bwrap_stat.st_dev, bwrap_stat.st_ino),
    )


def _basic_launch(
    argv: list[str],
    job_dir: str,
    binds: list[tuple[str, str, bool]],
    limits: Limits,
    env: Mapping[str, str],
    caps: Capabilities,
    cgroup: _MemoryCgroup | None,
) -> _Launch:
    logger.warning(
        "Sandbox BASIC mode: learner code runs WITHOUT network or file-system isolation%s "
        "(rlimits only). Install bubblewrap and use STRICT mode for untrusted code.",
        ", AS ROOT" if caps.is_root else "",
    )
    translate = _host_path_translator(job_dir, binds)
    address_space = None if cgroup else _address_space_fallback_mb(limits)
    if caps.prlimit:
        limit_args, preexec = _rlimit_args(caps.prlimit, limits, address_space), None
    else:
        limit_args, preexec = [], functools.partial(_apply_rlimits, limits, address_space)
    sandbox_env = _sandbox_env(
        home=job_dir,
        cache=os.path.join(job_dir, ".cache"),
        bin_dir=os.path.dirname(argv[0]),
        extra={key: translate(value) for key, value in env.items()},
    )
    command = [
        *_cgroup_join_args(cgroup),
        *limit_args,
        *_started_shim(job_dir),
        *(translate(arg) for arg in argv),
    ]
    return _Launch(
        command=command,
        env=sandbox_env,
        cwd=job_dir,
        mode=SandboxMode.BASIC,
        memory_enforcement="cgroup" if cgroup else "rlimit_as",
        cgroup=cgroup,
        bwrap_identity=None,
        preexec=preexec,
    )


def _apply_rlimits(limits: Limits, address_space_mb: int | None) -> None:
    """preexec_fn fallback when prlimit is missing (BASIC mode only)."""
    cpu = (limits.cpu_seconds, limits.cpu_seconds + CPU_HARD_MARGIN_SECONDS)
    fsize = limits.file_size_mb * _MIB
    resource.setrlimit(resource.RLIMIT_CPU, cpu)
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if address_space_mb is not None:
        space = address_space_mb * _MIB
        resource.setrlimit(resource.RLIMIT_AS, (space, space))


class _Supervisor:
    """Start the command, pump its output, enforce time/cancel/output, classify."""

    def __init__(
        self,
        launch: _Launch,
        *,
        limits: Limits,
        on_stdout_line: Callable[[str], None],
        should_stop: Callable[[], bool],
        poll_seconds: float,
        kill_grace_seconds: float,
        max_stdout_bytes: int,
    ) -> None:
        self.launch = launch
        self.limits = limits
        self.should_stop = should_stop
        self.poll_seconds = max(0.01, poll_seconds)
        self.kill_grace = kill_grace_seconds
        self.stdout = _StdoutLines(on_stdout_line, max_stdout_bytes)
        self.stderr = _Tail(STDERR_TAIL_BYTES)
        self.started = False
        self.stop_reason: str | None = None
        self.kill_at: float | None = None

    def run(self) -> SandboxResult:
        started_read, started_write = os.pipe()
        begin = time.monotonic()
        try:
            proc = subprocess.Popen(
                self.launch.command,
                stdin=started_write,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.launch.env,
                cwd=self.launch.cwd,
                start_new_session=True,  # our own process group, apart from the worker's
                preexec_fn=self.launch.preexec,  # only in BASIC mode without prlimit
            )
        except OSError as exc:
            os.close(started_read)
            raise SandboxError(f"Could not start the sandbox: {exc}") from exc
        finally:
            os.close(started_write)
        self.proc = proc
        try:
            status = self._supervise(proc, started_read, begin)
        finally:
            self._ensure_dead(proc)
            os.close(started_read)
        return self._result(status, time.monotonic() - begin)

    # -- main loop

    def _supervise(self, proc: subprocess.Popen[bytes], started_read: int, begin: float) -> int:
        deadline = begin + self.limits.wall_seconds
        pidfd = os.pidfd_open(proc.pid)
        selector = selectors.DefaultSelector()
        assert proc.stdout is not None and proc.stderr is not None
        streams: dict[int, Callable[[bytes], None]] = {
            proc.stdout.fileno(): self.stdout.feed,
            proc.stderr.fileno(): self.stderr.feed,
            started_read: self._on_started,
        }
        for fd in streams:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        selector.register(pidfd, selectors.EVENT_READ)
        next_stop_check = begin
        try:
            while not self._exited(proc.pid):
                now = time.monotonic()
                wake = min(now + self.poll_seconds, deadline, self.kill_at or deadline)
                self._pump(selector, streams, max(0.0, wake - now))
                now = time.monotonic()
                if now >= next_stop_check:
                    next_stop_check = now + self.poll_seconds
                    if self.stop_reason is None and self.should_stop():
                        self._begin_stop("cancelled")
                if now >= deadline:
                    self._begin_stop("timeout")
                if self.stdout.over_limit:
                    self.stdout.muted = True
                    self._begin_stop("output_limit")
                if self.kill_at is not None and now >= self.kill_at:
                    self._kill_hard()
            self._after_exit(proc)
            self._drain(selector, streams, pidfd)
        finally:
            selector.close()
            os.close(pidfd)
        _, status = os.waitpid(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        self.stdout.flush()
        return proc.returncode

    def _pump(
        self,
        selector: selectors.BaseSelector,
        streams: dict[int, Callable[[bytes], None]],
        timeout: float,
    ) -> None:
        for key, _ in selector.select(timeout):
            fd = key.fd
            if fd not in streams:
                continue  # the pidfd: the loop checks for exit
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if data:
                streams[fd](data)
            else:
                selector.unregister(fd)
                del streams[fd]

    def _drain(
        self,
        selector: selectors.BaseSelector,
        streams: dict[int, Callable[[bytes], None]],
        pidfd: int,
    ) -> None:
        """Read what is left in the pipes, without waiting for a straggler forever."""
        selector.unregister(pidfd)
        until = time.monotonic() + DRAIN_SECONDS
        while streams and (left := until - time.monotonic()) > 0:
            self._pump(selector, streams, left)

    def _on_started(self, data: bytes) -> None:
        self.started = True

    @staticmethod
    def _exited(pid: int) -> bool:
        # WNOWAIT: the zombie keeps its pid (and process group) reserved until
        # we have finished signalling, so no kill can hit a reused pid.
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return info is not None

    # -- stopping

    def _begin_stop(self, reason: str) -> None:
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        self.kill_at = time.monotonic() + self.kill_grace
        self._signal_program(signal.SIGTERM)

    def _signal_program(self, sig: int) -> None:
        root = self.proc.pid
        if self.launch.mode is SandboxMode.BASIC:
            self._killpg(sig)
        for proc in _descendants(root):
            if not _is_executable(proc.pid, self.launch.bwrap_identity):
                _signal_verified(proc.pid, sig, _same_start(proc))

    def _killpg(self, sig: int) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, sig)

    def _kill_hard(self) -> None:
        """SIGKILL: in STRICT mode bubblewrap's death takes the pid namespace with it."""
        self.kill_at = None
        self._signal_program(signal.SIGKILL)
        self._killpg(signal.SIGKILL)
        if self.launch.cgroup is not None:
            self.launch.cgroup.kill_all()

    def _after_exit(self, proc: subprocess.Popen[bytes]) -> None:
        """The main process is gone: take anything it left behind with it."""
        if self.launch.mode is SandboxMode.BASIC:
            self._killpg(signal.SIGKILL)
        if self.launch.cgroup is not None:
            self.launch.cgroup.kill_all()

    def _ensure_dead(self, proc: subprocess.Popen[bytes]) -> None:
        """On any error (a callback that raised...), leave nothing running."""
        if proc.returncode is not None:
            return
        self._killpg(signal.SIGKILL)
        proc.kill()
        proc.wait()

    # -- result

    def _result(self, returncode: int, wall: float) -> SandboxResult:
        if self.stop_reason is None and not self.started:
            raise SandboxError(
                f"The sandbox failed before the program started (exit {returncode}): "
                f"{self.stderr.text().strip()[-2000:]}"
            )
        outcome = self._classify(returncode)
        return SandboxResult(
            returncode=returncode,
            outcome=outcome,
            stderr_tail=self.stderr.text(),
            wall_seconds=round(wall, 3),
            mode=self.launch.mode,
            memory_enforcement=self.launch.memory_enforcement,
            detail=_describe_outcome(outcome, returncode, self.limits),
        )

    def _classify(self, returncode: int) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        if returncode == 0:
            return "ok"
        cgroup = self.launch.cgroup
        if cgroup is not None and cgroup.oom_kills() > 0:
            return "memory"
        if cgroup is None and any(m in self.stderr.text() for m in _ALLOCATION_FAILURES):
            return "memory"
        sig = _death_signal(returncode)
        # The soft limit's SIGXCPU. A program that catches it is SIGKILLed at
        # the hard limit and reported as killed: the run's CPU time cannot be
        # read back (the outer bwrap exits before its init reaps the sandbox).
        if sig == signal.SIGXCPU:
            return "cpu"
        return "exited"


# --------------------------------------------------------------------------
# Reading results back safely


def open_job_file(job_dir: str, name: str, *, max_bytes: int) -> bytes:
    """Read job_dir/name without following any link, refusing non-files and big files.

    The job folder was writable by learner code: any component may be a
    planted symlink (Judge0 CVE-2024-28185), a FIFO (blocks the reader) or a
    hard link to a file we did not write.
    """
    parts = _relative_parts(name)
    dir_fd = os.open(job_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            next_fd = _open_no_follow(part, dir_fd, name, os.O_DIRECTORY)
            os.close(dir_fd)
            dir_fd = next_fd
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = _open_no_follow(parts[-1], dir_fd, name, os.O_NONBLOCK | os.O_NOCTTY)
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as fh:
        _check_job_file(os.fstat(fd), name, max_bytes)
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnsafeJobFile(f"{name} grew beyond {max_bytes} bytes while being read.")
    return data


def _relative_parts(name: str) -> list[str]:
    parts = name.split("/")
    if not name or name.startswith("/") or "\0" in name or any(p in ("", ".", "..") for p in parts):
        raise UnsafeJobFile(f"{name!r} is not a plain relative path inside the job folder.")
    return parts


def _open_no_follow(part: str, dir_fd: int, name: str, extra_flags: int) -> int:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | extra_flags
    try:
        return os.open(part, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafeJobFile(
                f"{name} is, or passes through, a symbolic link or a non-folder."
            ) from exc
        raise


def _check_job_file(info: os.stat_result, name: str, max_bytes: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeJobFile(f"{name} is not a regular file.")
    if info.st_nlink != 1:
        raise UnsafeJobFile(f"{name} is a hard link shared with another file.")
    if info.st_size > max_bytes:
        raise UnsafeJobFile(f"{name} is {info.st_size} bytes, over the {max_bytes}-byte limit.")
