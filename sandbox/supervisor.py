"""Starting a run and watching it: limits, cancel, output, and how it ended."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import resource
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sandbox.capabilities import Capabilities, capabilities_for, detect_capabilities
from sandbox.cgroups import RunCgroup
from sandbox.command import (
    address_space_fallback_mb,
    args_file,
    bind_args,
    build_sandbox_env,
    data_file,
    device_args,
    host_path_translator,
    namespace_args,
    nested_userns_args,
    prepare_job_dir,
    rlimit_args,
    started_shim,
    system_mount_args,
    tmpfs_args,
    validate_binds,
    venv_args,
)
from sandbox.jobspace import JobSpace, job_files_limit
from sandbox.policy import (
    ALLOCATION_FAILURES,
    CPU_HARD_MARGIN_SECONDS,
    DRAIN_SECONDS,
    JOB_MOUNT,
    KILL_GRACE_SECONDS,
    MAX_STDOUT_BYTES,
    MIB,
    PLATFORM_TASKS,
    PROCESS_LIMIT_FAILURES,
    SANDBOX_GID,
    SANDBOX_TMP,
    SANDBOX_UID,
    STDERR_TAIL_BYTES,
    Limits,
    SandboxError,
    SandboxMode,
    SandboxPolicy,
    SandboxUnavailable,
    setpriv_args,
)
from sandbox.processes import descendants, is_executable, same_start, signal_verified
from sandbox.runtime import python_runtime
from sandbox.streams import StdoutLines, Tail
from sandbox.uids import UidLease

logger = logging.getLogger(__name__)


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
    process_enforcement: str = "none"  # one of PROCESS_ENFORCEMENTS
    disk_enforcement: str = "none"  # one of DISK_ENFORCEMENTS
    devices: tuple[str, ...] = ()  # the host device nodes the program could open

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def _describe_outcome(outcome: str, returncode: int, limits: Limits, filled: str | None) -> str:
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
        "output_limit": f"The program printed more than {MAX_STDOUT_BYTES // MIB} MB "
        "to standard output and was stopped.",
        "disk": (
            f"Your run wrote more than its {limits.disk_mb} MB of disk"
            if filled != "files"
            else f"Your run made more than its {job_files_limit(limits.disk_mb):,} files"
        )
        + " in its job folder, so a write failed with 'No space left on device'. Save less "
        "(one checkpoint, at the end) or delete what you no longer need.",
        "processes": f"Your run tried to start more than its {limits.max_processes} processes "
        "and threads, so a start failed. Use fewer DataLoader workers or threads, and make "
        "sure no loop starts processes without waiting for them.",
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
    cgroups: _RunCgroups
    # STRICT: SIGTERM goes to the learner's processes, never to bubblewrap
    # (its death SIGKILLs the whole sandbox at once, leaving no grace period).
    bwrap_identity: tuple[int, int] | None
    process_enforcement: str
    space: JobSpace | None = None
    preexec: Callable[[], None] | None = None
    # Inherited by the command and closed here once it has started (bubblewrap's --args).
    pass_fds: tuple[int, ...] = ()


@dataclass
class _RunCgroups:
    """A run's cgroups: one on v2 (memory and pids), one per controller on v1."""

    memory: RunCgroup | None = None
    pids: RunCgroup | None = None

    @property
    def all(self) -> list[RunCgroup]:
        unique = [self.memory, self.pids]
        return [c for i, c in enumerate(unique) if c is not None and c not in unique[:i]]

    def kill_all(self) -> None:
        for cgroup in self.all:
            cgroup.kill_all()

    def join_args(self) -> list[str]:
        # Each shell joins one cgroup, then execs the next: every process of the run is
        # inside before any of them allocates or forks.
        args: list[str] = []
        for cgroup in self.all:
            args += ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', cgroup.procs_file]
        return args


def run(
    policy: SandboxPolicy,
    *,
    argv: list[str],
    on_stdout_line: Callable[[str], None] = lambda line: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> SandboxResult:
    """Run argv under the policy (see run_sandboxed for what is raised and returned)."""
    return run_sandboxed(
        argv=argv,
        job_dir=policy.job_dir,
        ro_binds=policy.ro_binds,
        limits=policy.limits,
        mode=policy.mode,
        env=policy.env,
        cwd_inside=policy.cwd_inside,
        on_stdout_line=on_stdout_line,
        should_stop=should_stop,
        capabilities=capabilities_for(
            policy.memory_cgroup_parent, policy.pids_cgroup_parent, policy.uid_range
        ),
        devices=policy.devices,
    )


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
    devices: tuple[str, ...] = (),
) -> SandboxResult:
    """Run argv (argv[0]: an absolute path, e.g. the venv's python) sandboxed.

    Raises SandboxUnavailable (STRICT requested, cannot run here),
    SandboxError (the sandbox failed before the program started) or JobFilesLost
    (what the run left could not be written back to job_dir). Everything the
    program itself does is reported in the result's outcome.
    """
    if not argv or not os.path.isabs(argv[0]):
        raise ValueError("argv[0] must be an absolute path to the program")
    job_dir = os.path.abspath(job_dir)
    if not os.path.isdir(job_dir):
        raise ValueError(f"job_dir {job_dir!r} is not a directory")
    binds = validate_binds(ro_binds or {})
    # A missing program would fail inside as exit 127: the learner's fault in
    # appearance, a configuration error in fact.
    if not os.access(host_path_translator(job_dir, binds)(argv[0]), os.X_OK):
        raise ValueError(f"argv[0] {argv[0]!r} is not an executable on this machine")
    caps = capabilities or detect_capabilities()
    mode = SandboxMode(mode)
    if mode is SandboxMode.STRICT and not caps.full:
        raise SandboxUnavailable(
            "The strict sandbox cannot run here: " + "; ".join(caps.missing_for_strict()) + "."
        )
    if should_stop():
        return SandboxResult(0, "cancelled", "", 0.0, mode, "none", detail="The run was cancelled.")
    strict = mode is SandboxMode.STRICT
    process_enforcement = caps.process_enforcement(strict=strict)
    # Unwound in reverse: the job space is released (its memory uncharged) before the
    # cgroups go, and the uid is freed last, once nothing of the run is left.
    with contextlib.ExitStack() as stack:
        uid, gid = SANDBOX_UID, SANDBOX_GID
        if process_enforcement == "uid":
            assert caps.uid_range is not None
            uid = gid = stack.enter_context(UidLease(*caps.uid_range))
        cgroups = _make_cgroups(stack, caps, limits, with_pids=process_enforcement == "cgroup")
        space = None
        # BASIC mode runs learner code as the worker, able to write anywhere: a quota on
        # its job folder would only look like one.
        if strict and caps.job_quota:
            assert caps.mount is not None and caps.umount is not None
            space = stack.enter_context(
                JobSpace(
                    job_dir,
                    size_mb=limits.disk_mb,
                    uid=uid,
                    gid=gid,
                    mount=caps.mount,
                    umount=caps.umount,
                )
            )
        run_dir = space.path if space else job_dir
        identity = _Identity(uid, gid, process_enforcement)
        if strict:
            launch = _strict_launch(
                argv,
                run_dir,
                binds,
                limits,
                env or {},
                cwd_inside,
                caps,
                cgroups,
                identity,
                devices,
            )
        else:
            launch = _basic_launch(argv, run_dir, binds, limits, env or {}, caps, cgroups, identity)
        launch.space = space
        supervisor = _Supervisor(
            launch,
            limits=limits,
            on_stdout_line=on_stdout_line,
            should_stop=should_stop,
            poll_seconds=poll_seconds,
            kill_grace_seconds=kill_grace_seconds,
            max_stdout_bytes=max_stdout_bytes,
        )
        result = supervisor.run()
        if space is not None:
            space.keep()
        return dataclasses.replace(result, devices=devices if strict else ())


@dataclass(frozen=True)
class _Identity:
    uid: int
    gid: int
    process_enforcement: str  # one of PROCESS_ENFORCEMENTS


def _make_cgroups(
    stack: contextlib.ExitStack, caps: Capabilities, limits: Limits, *, with_pids: bool
) -> _RunCgroups:
    # The sandbox's own tasks are added to the learner's budget (PLATFORM_TASKS).
    tasks = limits.max_processes + PLATFORM_TASKS if with_pids else None
    shared = with_pids and caps.pids_cgroup == caps.memory_cgroup  # one v2 cgroup for both
    cgroups = _RunCgroups()
    if caps.memory_cgroup:
        cgroups.memory = RunCgroup(
            caps.memory_cgroup, memory_mb=limits.memory_mb, max_tasks=tasks if shared else None
        )
        stack.callback(cgroups.memory.remove)
    if shared:
        cgroups.pids = cgroups.memory
    elif with_pids and caps.pids_cgroup:
        cgroups.pids = RunCgroup(caps.pids_cgroup, max_tasks=tasks)
        stack.callback(cgroups.pids.remove)
    return cgroups


def _strict_launch(
    argv: list[str],
    job_dir: str,
    binds: list[tuple[str, str, bool]],
    limits: Limits,
    env: Mapping[str, str],
    cwd_inside: str,
    caps: Capabilities,
    cgroups: _RunCgroups,
    identity: _Identity,
    devices: tuple[str, ...] = (),
) -> _Launch:
    assert caps.bubblewrap is not None and caps.prlimit is not None
    prepare_job_dir(job_dir, caps.is_root, identity.uid, identity.gid)
    tools = tuple(t for t in (caps.bubblewrap, caps.setpriv) if t and caps.is_root)
    runtime = python_runtime(argv[0], tools)
    pass_fds: list[int] = []
    venv: list[str] = []
    if runtime.venv_config is not None and runtime.venv_python is not None:
        pass_fds.append(data_file(runtime.venv_config))
        venv = venv_args(runtime.venv_python, pass_fds[-1])
    mounts = [
        *system_mount_args(),
        # The tmpfs first: a checkout (and so its venv) may itself live under /tmp,
        # and a tmpfs mounted after the binds would hide them.
        *tmpfs_args(limits),
        *bind_args(
            [*((h, d, False) for h, d in runtime.binds), *binds, (job_dir, JOB_MOUNT, True)]
        ),
        *venv,
        *device_args(devices),
        "--remount-ro",
        "/",
    ]
    inside: list[str] = []
    if caps.is_root:
        inside = [caps.setpriv or "setpriv", *setpriv_args(identity.uid, identity.gid), "--"]
        if caps.nested_userns_blocked:
            # It maps the run's uid to 65534 inside, whichever uid the run was lent.
            inside += nested_userns_args(caps.bubblewrap, True)
    memory_enforcement = "cgroup" if cgroups.memory else "rlimit_as"
    address_space = None if cgroups.memory else address_space_fallback_mb(limits)
    bwrap_stat = os.stat(caps.bubblewrap)
    pass_fds.append(args_file([*namespace_args(caps.is_root), *mounts]))
    command = [
        *cgroups.join_args(),
        *rlimit_args(
            caps.prlimit,
            limits,
            address_space,
            nproc=identity.process_enforcement != "cgroup",
        ),
        caps.bubblewrap,
        "--args",
        str(pass_fds[-1]),
        "--",
        *inside,
        *started_shim(cwd_inside),
        runtime.executable,
        *argv[1:],
    ]
    sandbox_env = build_sandbox_env(
        home=JOB_MOUNT,
        cache=f"{SANDBOX_TMP}/cache",
        bin_dir=runtime.bin_dir,
        extra={**runtime.env, **env},
    )
    return _Launch(
        command=command,
        env=sandbox_env,
        cwd="/",
        mode=SandboxMode.STRICT,
        memory_enforcement=memory_enforcement,
        cgroups=cgroups,
        bwrap_identity=(bwrap_stat.st_dev, bwrap_stat.st_ino),
        process_enforcement=identity.process_enforcement,
        pass_fds=tuple(pass_fds),
    )


def _basic_launch(
    argv: list[str],
    job_dir: str,
    binds: list[tuple[str, str, bool]],
    limits: Limits,
    env: Mapping[str, str],
    caps: Capabilities,
    cgroups: _RunCgroups,
    identity: _Identity,
) -> _Launch:
    logger.warning(
        "Sandbox BASIC mode: learner code runs WITHOUT network or file-system isolation%s "
        "(rlimits only). Install bubblewrap and use STRICT mode for untrusted code.",
        ", AS ROOT" if caps.is_root else "",
    )
    translate = host_path_translator(job_dir, binds)
    address_space = None if cgroups.memory else address_space_fallback_mb(limits)
    nproc = identity.process_enforcement != "cgroup"
    if caps.prlimit:
        limit_args = rlimit_args(caps.prlimit, limits, address_space, nproc=nproc)
        preexec = None
    else:
        limit_args = []
        preexec = functools.partial(_apply_rlimits, limits, address_space, nproc)
    sandbox_env = build_sandbox_env(
        home=job_dir,
        cache=os.path.join(job_dir, ".cache"),
        bin_dir=os.path.dirname(argv[0]),
        extra={key: translate(value) for key, value in env.items()},
    )
    command = [
        *cgroups.join_args(),
        *limit_args,
        *started_shim(job_dir),
        *(translate(arg) for arg in argv),
    ]
    return _Launch(
        command=command,
        env=sandbox_env,
        cwd=job_dir,
        mode=SandboxMode.BASIC,
        memory_enforcement="cgroup" if cgroups.memory else "rlimit_as",
        cgroups=cgroups,
        bwrap_identity=None,
        process_enforcement=identity.process_enforcement,
        preexec=preexec,
    )


def _apply_rlimits(limits: Limits, address_space_mb: int | None, nproc: bool) -> None:
    """preexec_fn fallback when prlimit is missing (BASIC mode only)."""
    cpu = (limits.cpu_seconds, limits.cpu_seconds + CPU_HARD_MARGIN_SECONDS)
    fsize = limits.file_size_mb * MIB
    resource.setrlimit(resource.RLIMIT_CPU, cpu)
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    if nproc:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if address_space_mb is not None:
        space = address_space_mb * MIB
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
        self.stdout = StdoutLines(on_stdout_line, max_stdout_bytes)
        self.stderr = Tail(STDERR_TAIL_BYTES)
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
                pass_fds=self.launch.pass_fds,
            )
        except OSError as exc:
            os.close(started_read)
            raise SandboxError(f"Could not start the sandbox: {exc}") from exc
        finally:
            os.close(started_write)
            for fd in self.launch.pass_fds:
                os.close(fd)
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
        for proc in descendants(root):
            if not is_executable(proc.pid, self.launch.bwrap_identity):
                signal_verified(proc.pid, sig, same_start(proc))

    def _killpg(self, sig: int) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, sig)

    def _kill_hard(self) -> None:
        """SIGKILL: in STRICT mode bubblewrap's death takes the pid namespace with it."""
        self.kill_at = None
        self._signal_program(signal.SIGKILL)
        self._killpg(signal.SIGKILL)
        self.launch.cgroups.kill_all()

    def _after_exit(self, proc: subprocess.Popen[bytes]) -> None:
        """The main process is gone: take anything it left behind with it."""
        if self.launch.mode is SandboxMode.BASIC:
            self._killpg(signal.SIGKILL)
        self.launch.cgroups.kill_all()

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
        space = self.launch.space
        filled = space.exhausted() if space is not None else None
        outcome = self._classify(returncode, filled)
        return SandboxResult(
            returncode=returncode,
            outcome=outcome,
            stderr_tail=self.stderr.text(),
            wall_seconds=round(wall, 3),
            mode=self.launch.mode,
            memory_enforcement=self.launch.memory_enforcement,
            detail=_describe_outcome(outcome, returncode, self.limits, filled),
            process_enforcement=self.launch.process_enforcement,
            disk_enforcement="tmpfs" if space is not None else "none",
        )

    def _classify(self, returncode: int, filled: str | None) -> str:
        """A limit that the host saw hit, for a program that then failed; else how it ended.
        (A program that meets a limit and still exits 0 simply finished.)"""
        if self.stop_reason is not None:
            return self.stop_reason
        if returncode == 0:
            return "ok"
        memory, pids = self.launch.cgroups.memory, self.launch.cgroups.pids
        stderr = self.stderr.text()
        if memory is not None and memory.oom_kills() > 0:
            return "memory"
        if memory is None and any(m in stderr for m in ALLOCATION_FAILURES):
            return "memory"
        if filled is not None:
            return "disk"
        if pids is not None and pids.task_limit_hits() > 0:
            return "processes"
        if self.launch.process_enforcement == "uid" and any(
            m in stderr for m in PROCESS_LIMIT_FAILURES
        ):
            return "processes"
        sig = _death_signal(returncode)
        # The soft limit's SIGXCPU. A program that catches it is SIGKILLed at
        # the hard limit and reported as killed: the run's CPU time cannot be
        # read back (the outer bwrap exits before its init reaps the sandbox).
        if sig == signal.SIGXCPU:
            return "cpu"
        return "exited"
