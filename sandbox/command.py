"""The command line of a run: namespaces, mounts, binds, rlimits and the environment."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath

from sandbox.policy import (
    CPU_HARD_MARGIN_SECONDS,
    DEFAULT_THREADS,
    ETC_FILES,
    JOB_MOUNT,
    MIB,
    RESERVED_DESTS,
    SANDBOX_GID,
    SANDBOX_SHM,
    SANDBOX_TMP,
    SANDBOX_UID,
    SYSTEM_TOP_DIRS,
    VENV_MOUNT,
    Limits,
)

# --------------------------------------------------------------------------
# Building the command


def namespace_args(is_root: bool) -> list[str]:
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


def started_shim(cwd: str) -> list[str]:
    """Enter cwd, write one byte to the "started" pipe (our stdin), then run the
    program with a /dev/null stdin. A run that ends before this byte arrives
    never reached the learner's code: the platform's fault, not the learner's.
    The cd happens here, as uid 65534, because root without CAP_DAC_OVERRIDE
    (the outer bwrap) cannot enter the job folder, which is 0700 and 65534's."""
    script = 'cd "$0" && printf . >&0 && exec "$@" </dev/null'
    return ["/bin/sh", "-c", script, cwd]


def nested_userns_args(bwrap: str, is_root: bool) -> list[str]:
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


def system_mount_args() -> list[str]:
    """The merged-/usr links (or the real top folders), two files of /etc, /proc, /dev.
    Of /usr itself only what the program loads is bound (sandbox/runtime.py)."""
    args: list[str] = []
    for name in SYSTEM_TOP_DIRS:
        host = f"/{name}"
        if os.path.islink(host):
            args += ["--symlink", os.readlink(host), host]  # merged /usr: lib -> usr/lib
        elif os.path.isdir(host):
            args += ["--ro-bind", host, host]
    args += ["--perms", "0755", "--dir", "/etc"]
    for path in ETC_FILES:
        args += ["--ro-bind-try", path, path]
    return [*args, "--proc", "/proc", "--dev", "/dev"]


def device_args(devices: tuple[str, ...]) -> list[str]:
    """Host device nodes at their own paths, on top of bubblewrap's minimal /dev. Only
    character devices: a path that is anything else (a folder of the host, a link) is a
    configuration error, not something to bind."""
    args: list[str] = []
    for device in devices:
        if not os.path.isabs(device) or not stat.S_ISCHR(
            os.stat(device, follow_symlinks=False).st_mode
        ):
            raise ValueError(f"{device!r} is not a character device")
        args += ["--dev-bind", device, device]
    return args


def args_file(args: list[str]) -> int:
    """bubblewrap's arguments in a memfd, for `--args FD`: the sandbox's pid 1 is a
    bubblewrap, and its /proc/1/cmdline would otherwise show every host path it binds,
    the job folder's (and so the submission's id) among them."""
    fd = os.memfd_create("sandbox-args", os.MFD_CLOEXEC)
    os.write(fd, b"".join(arg.encode() + b"\0" for arg in args))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def venv_args(venv_python: str, config_fd: int) -> list[str]:
    """The virtualenv made inside (runtime.Runtime): bin/python and pyvenv.cfg, readable by
    the run's uid (bubblewrap makes data files 0600, root's, by default)."""
    return [
        *("--perms", "0755", "--dir", f"{VENV_MOUNT}/bin"),
        *("--symlink", venv_python, f"{VENV_MOUNT}/bin/python"),
        *("--perms", "0444", "--ro-bind-data", str(config_fd), f"{VENV_MOUNT}/pyvenv.cfg"),
    ]


def data_file(text: str) -> int:
    """A memfd holding text, for bubblewrap's --ro-bind-data."""
    fd = os.memfd_create("sandbox-data", os.MFD_CLOEXEC)
    os.write(fd, text.encode())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def is_under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def bind_args(binds: list[tuple[str, str, bool]]) -> list[str]:
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
            if name != "/" and name not in parents and not any(is_under(name, d) for d in dests):
                parents.append(name)
    args: list[str] = []
    for folder in parents:
        args += ["--perms", "0755", "--dir", folder]
    for host, dest, writable in binds:
        args += ["--bind" if writable else "--ro-bind", host, dest]
    return args


def tmpfs_args(limits: Limits) -> list[str]:
    # Sized: under RLIMIT_AS a tmpfs would otherwise be a way around the cap.
    size = str(max(64, limits.memory_mb // 2) * MIB)
    args = []
    for dest in (SANDBOX_TMP, SANDBOX_SHM):  # DataLoader workers share tensors in /dev/shm
        args += ["--perms", "1777", "--size", size, "--tmpfs", dest]
    return args


def rlimit_args(
    prlimit: str, limits: Limits, address_space_mb: int | None, *, nproc: bool = True
) -> list[str]:
    """nproc=False where a pids cgroup caps the run: RLIMIT_NPROC counts the uid's processes
    machine-wide, so with uid 65534 shared it would pool every run's processes."""
    args = [
        prlimit,
        f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + CPU_HARD_MARGIN_SECONDS}",
        f"--fsize={limits.file_size_mb * MIB}",
        f"--nofile={limits.open_files}",
        "--core=0",
    ]
    if nproc:
        args.append(f"--nproc={limits.max_processes}")
    if address_space_mb is not None:
        args.append(f"--as={address_space_mb * MIB}")
    return [*args, "--"]


def address_space_fallback_mb(limits: Limits) -> int:
    """RLIMIT_AS counts reserved address space, not use: import torch reserves
    ~768 MB and a MiniLM run 1.5-2.5 GB (SANDBOX.md), so the bound is generous."""
    return max(2 * limits.memory_mb, limits.memory_mb + 2048)


def build_sandbox_env(
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


def validate_binds(ro_binds: Mapping[str, str]) -> list[tuple[str, str, bool]]:
    binds = []
    for host, dest in ro_binds.items():
        norm = os.path.normpath(dest)
        if not os.path.isabs(dest) or norm == "/" or ".." in PurePosixPath(dest).parts:
            raise ValueError(f"ro_binds destination {dest!r} must be an absolute path below /")
        if any(is_under(norm, r) or is_under(r, norm) for r in RESERVED_DESTS):
            raise ValueError(f"ro_binds destination {dest!r} overlaps a system path")
        if not os.path.exists(host):
            raise ValueError(f"ro_binds source {host!r} does not exist")
        binds.append((os.path.realpath(host), norm, False))
    return binds


def prepare_job_dir(
    job_dir: str, is_root: bool, uid: int = SANDBOX_UID, gid: int = SANDBOX_GID
) -> None:
    """Give the job folder to the run's uid so the program can write there.

    lchown, never following links: on a reused folder the learner may have
    planted symlinks to host files (Judge0 CVE-2024-28185).
    """
    if not is_root:
        return  # without root, sandbox uid 65534 maps to our own uid
    os.chown(job_dir, uid, gid)
    os.chmod(job_dir, 0o700)
    for root, dirs, files in os.walk(job_dir):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def host_path_translator(job_dir: str, binds: list[tuple[str, str, bool]]) -> Callable[[str], str]:
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
            if is_under(value, dest):
                return host + value[len(dest) :]
        return value

    def translate(value: str) -> str:
        return ":".join(translate_one(part) for part in value.split(":"))

    return translate
