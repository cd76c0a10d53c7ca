"""Starting a run and watching it: limits, cancel, output, and how it ended."""

from __future__ import annotations

import contextlib
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
from sandbox.cgroups import MemoryCgroup
from sandbox.command import (
    address_space_fallback_mb,
    bind_args,
    build_sandbox_env,
    host_path_translator,
    interpreter_dirs,
    is_under,
    namespace_args,
    nested_userns_args,
    prepare_job_dir,
    rlimit_args,
    started_shim,
    system_mount_args,
    tmpfs_args,
    validate_binds,
)
from sandbox.policy import (
    ALLOCATION_FAILURES,
    CPU_HARD_MARGIN_SECONDS,
    DRAIN_SECONDS,
    JOB_MOUNT,
    KILL_GRACE_SECONDS,
    MAX_STDOUT_BYTES,
    MIB,
    SANDBOX_TMP,
    SETPRIV_ARGS,
    STDERR_TAIL_BYTES,
    Limits,
    SandboxError,
    SandboxMode,
    SandboxPolicy,
    SandboxUnavailable,
)
from sandbox.processes import descendants, is_executable, same_start, signal_verified
from sandbox.streams import StdoutLines, Tail

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
        "output_limit": f"The program printed more than {MAX_STDOUT_BYTES // MIB} MB "
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
    cgroup: MemoryCgroup | None
    # STRICT: SIGTERM goes to the learner's processes, never to bubblewrap
    # (its death SIGKILLs the whole sandbox at once, leaving no grace period).
    bwrap_identity: tuple[int, int] | None
    preexec: Callable[[], None] | None = None


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
        capabilities=capabilities_for(policy.memory_cgroup_parent),
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
    cgroup = MemoryCgroup(caps.memory_cgroup, limits.memory_mb) if caps.memory_cgroup else None
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


def _cgroup_join_args(cgroup: MemoryCgroup | None) -> list[str]:
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
    cgroup: MemoryCgroup | None,
) -> _Launch:
    assert caps.bubblewrap is not None and caps.prlimit is not None
    prepare_job_dir(job_dir, caps.is_root)
    tools = [t for t in (caps.bubblewrap, caps.setpriv) if t and not is_under(t, "/usr")]
    runtime = [(d, d, False) for d in interpreter_dirs(argv[0]) + tools]
    mounts = [
        *system_mount_args(),
        # The tmpfs first: a checkout (and so its venv) may itself live under /tmp,
        # and a tmpfs mounted after the binds would hide them.
        *tmpfs_args(limits),
        *bind_args([*runtime, *binds, (job_dir, JOB_MOUNT, True)]),
        "--remount-ro",
        "/",
    ]
    inside: list[str] = []
    if caps.is_root:
        inside = [caps.setpriv or "setpriv", *SETPRIV_ARGS, "--"]
        if caps.nested_userns_blocked:
            inside += nested_userns_args(caps.bubblewrap, True)
    memory_enforcement = "cgroup" if cgroup else "rlimit_as"
    address_space = None if cgroup else address_space_fallback_mb(limits)
    bwrap_stat = os.stat(caps.bubblewrap)
    command = [
        *_cgroup_join_args(cgroup),
        *rlimit_args(caps.prlimit, limits, address_space),
        caps.bubblewrap,
        *namespace_args(caps.is_root),
        *mounts,
        "--",
        *inside,
        *started_shim(cwd_inside),
        *argv,
    ]
    sandbox_env = build_sandbox_env(
        home=JOB_MOUNT, cache=f"{SANDBOX_TMP}/cache", bin_dir=os.path.dirname(argv[0]), extra=env
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
    cgroup: MemoryCgroup | None,
) -> _Launch:
    logger.warning(
        "Sandbox BASIC mode: learner code runs WITHOUT network or file-system isolation%s "
        "(rlimits only). Install bubblewrap and use STRICT mode for untrusted code.",
        ", AS ROOT" if caps.is_root else "",
    )
    translate = host_path_translator(job_dir, binds)
    address_space = None if cgroup else address_space_fallback_mb(limits)
    if caps.prlimit:
        limit_args, preexec = rlimit_args(caps.prlimit, limits, address_space), None
    else:
        limit_args, preexec = [], functools.partial(_apply_rlimits, limits, address_space)
    sandbox_env = build_sandbox_env(
        home=job_dir,
        cache=os.path.join(job_dir, ".cache"),
        bin_dir=os.path.dirname(argv[0]),
        extra={key: translate(value) for key, value in env.items()},
    )
    command = [
        *_cgroup_join_args(cgroup),
        *limit_args,
        *started_shim(job_dir),
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
    fsize = limits.file_size_mb * MIB
    resource.setrlimit(resource.RLIMIT_CPU, cpu)
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
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
        if cgroup is None and any(m in self.stderr.text() for m in ALLOCATION_FAILURES):
            return "memory"
        sig = _death_signal(returncode)
        # The soft limit's SIGXCPU. A program that catches it is SIGKILLed at
        # the hard limit and reported as killed: the run's CPU time cannot be
        # read back (the outer bwrap exits before its init reaps the sandbox).
        if sig == signal.SIGXCPU:
            return "cpu"
        return "exited"
