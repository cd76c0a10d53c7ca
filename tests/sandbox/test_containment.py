"""Hostile learner programs, run in the STRICT sandbox: each must be contained,
and the caller must get the right outcome and message."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sandbox import (
    MAX_LINE_BYTES,
    MAX_STDOUT_BYTES,
    STDERR_TAIL_BYTES,
    Capabilities,
    Limits,
    SandboxError,
    SandboxMode,
    nvidia_device_nodes,
    run_sandboxed,
)
from tests.sandbox.conftest import FAST_LIMITS, VENV_PYTHON, ScriptRunner, processes_with

pytestmark = pytest.mark.usefixtures("strict")


def test_program_runs_as_nobody_without_capabilities_or_user_namespaces(
    run_script: ScriptRunner, capabilities: Capabilities
) -> None:
    run = run_script("""
        import ctypes, json, os
        status = dict(
            line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines()
        )
        libc = ctypes.CDLL(None, use_errno=True)
        CLONE_NEWUSER = 0x10000000
        unshare_rc = libc.unshare(CLONE_NEWUSER)
        print(json.dumps({
            "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid()],
            "groups": os.getgroups(),
            "caps": [status[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")],
            "no_new_privs": status["NoNewPrivs"],
            "unshare_user": [unshare_rc, ctypes.get_errno()],
            "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
        }))
    """)
    seen = json.loads(run.lines[-1])
    assert run.result.outcome == "ok", run.result.stderr_tail
    assert seen["ids"] == [65534] * 4
    assert seen["groups"] == []
    assert seen["caps"] == ["0000000000000000"] * 5
    assert seen["no_new_privs"] == "1"
    # stdin, stdout, stderr and the listing itself: no worker fd (database,
    # broker sockets) leaks in.
    assert seen["fds"] == [0, 1, 2, 3]
    if capabilities.nested_userns_blocked:
        assert seen["unshare_user"][0] == -1, "learner code could create a user namespace"


def test_infinite_loop_is_stopped_at_the_wall_clock_limit(run_script: ScriptRunner) -> None:
    run = run_script(
        "while True:\n    pass\n",
        limits=Limits(wall_seconds=3, cpu_seconds=60, memory_mb=256),
        kill_grace_seconds=1,
    )
    assert run.result.outcome == "timeout"
    assert run.result.detail == "The run took longer than its 3 s time limit and was stopped."
    assert 3 <= run.result.wall_seconds < 3 + 1 + 3


def test_busy_loop_is_stopped_at_the_cpu_time_limit(run_script: ScriptRunner) -> None:
    run = run_script(
        "while True:\n    pass\n",
        limits=Limits(wall_seconds=60, cpu_seconds=1, memory_mb=256),
    )
    assert run.result.outcome == "cpu"
    assert run.result.detail == "The run used more than its 1 s CPU-time limit and was stopped."
    assert run.result.wall_seconds < 30


def test_allocating_10_gb_is_stopped_at_the_memory_limit(
    run_script: ScriptRunner, capabilities: Capabilities
) -> None:
    run = run_script(
        """
        chunks = []
        for i in range(160):  # 160 x 64 MB = 10 GB, every page touched
            chunks.append(b"\\x01" * (64 << 20))
            print("allocated", (i + 1) * 64, flush=True)
        """,
        limits=Limits(wall_seconds=60, cpu_seconds=60, memory_mb=256),
    )
    assert run.result.outcome == "memory", run.result.stderr_tail
    assert run.result.detail == "The run used more than its 256 MB memory limit and was stopped."
    allocated = [int(line.split()[1]) for line in run.lines]
    if capabilities.memory_cgroup:
        assert run.result.memory_enforcement == "cgroup"
        assert max(allocated, default=0) <= 256
        left_over = [
            name
            for name in os.listdir(capabilities.memory_cgroup)
            if name.startswith(f"llm-academy-sandbox-{os.getpid()}-")
        ]
        assert left_over == [], "the run's cgroup was not removed"
    else:
        assert run.result.memory_enforcement == "rlimit_as"
        assert "MemoryError" in run.result.stderr_tail


def test_fork_bomb_gets_eagain_and_leaves_nothing_behind(
    run_script: ScriptRunner, token: str
) -> None:
    run = run_script(
        """
        import errno, os, sys, time
        forks = 0
        while True:
            try:
                pid = os.fork()
            except OSError as exc:
                print("fork failed:", errno.errorcode[exc.errno], "after", forks, flush=True)
                sys.exit(0)
            if pid == 0:  # every child forks forever too: the classic bomb
                while True:
                    try:
                        os.fork()
                    except OSError:
                        time.sleep(0.05)
            forks += 1
        """,
        token,
        limits=Limits(wall_seconds=60, cpu_seconds=60, memory_mb=512, max_processes=24),
    )
    assert run.result.outcome == "ok", run.result.stderr_tail
    assert run.lines[0].startswith("fork failed: EAGAIN after ")
    assert int(run.lines[0].split()[-1]) < 24
    assert processes_with(token) == []


def test_writing_a_1_gb_file_fails_with_efbig(run_script: ScriptRunner, job_dir: Path) -> None:
    run = run_script(
        """
        import errno
        chunk = b"\\0" * (16 << 20)
        try:
            with open("/job/big.bin", "wb") as fh:
                for _ in range(64):  # 1 GB
                    fh.write(chunk)
            print("wrote 1 GB")
        except OSError as exc:
            print(errno.errorcode[exc.errno])
        """,
        limits=Limits(wall_seconds=60, cpu_seconds=60, memory_mb=512, file_size_mb=32),
    )
    assert run.lines == ["EFBIG"]
    assert (job_dir / "big.bin").stat().st_size <= 32 << 20


def _reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def test_host_services_on_loopback_are_unreachable(run_script: ScriptRunner) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    own_port = listener.getsockname()[1]
    # PostgreSQL and Redis run on this machine: prove each port answers out
    # here, so that "refused" inside really means the sandbox blocked it.
    ports = [own_port] + [p for p in (5432, 6379) if _reachable(p)]
    if os.environ.get("CI"):
        assert 5432 in ports and 6379 in ports, "CI must run PostgreSQL and Redis"
    assert _reachable(own_port)
    run = run_script(
        """
        import errno, json, socket, sys
        seen = {"interfaces": [name for _, name in socket.if_nameindex()]}
        for port in json.loads(sys.argv[1]):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=3)
                seen[str(port)] = "connected"
            except OSError as exc:
                seen[str(port)] = errno.errorcode.get(exc.errno, repr(exc))
        try:
            socket.create_connection(("1.1.1.1", 53), timeout=3)
            seen["internet"] = "connected"
        except OSError as exc:
            seen["internet"] = errno.errorcode.get(exc.errno, repr(exc))
        print(json.dumps(seen))
        """,
        json.dumps(ports),
    )
    listener.close()
    seen = json.loads(run.lines[-1])
    assert seen.pop("interfaces") == ["lo"]
    assert seen.pop("internet") == "ENETUNREACH"
    assert seen == {str(port): "ECONNREFUSED" for port in ports}


def test_worker_environment_secrets_are_not_visible(
    run_script: ScriptRunner, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACADEMY_SECRET_KEY", token)
    # Without the sandbox, a child process does see the worker's secret.
    plain = subprocess.run(
        [VENV_PYTHON, "-c", "import os; print(os.environ['ACADEMY_SECRET_KEY'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert token in plain.stdout
    run = run_script("""
        import glob, json, os
        seen = {"os.environ": dict(os.environ), "pids": sorted(glob.glob("/proc/[0-9]*"))}
        for path in ["/proc/1/environ", *glob.glob("/proc/[0-9]*/environ")]:
            try:
                seen[path] = open(path, "rb").read().decode("utf-8", "replace")
            except OSError as exc:
                seen[path] = "unreadable: " + exc.strerror
        print(json.dumps(seen))
    """)
    seen = json.loads(run.lines[-1])
    assert token not in run.stdout
    assert "ACADEMY_SECRET_KEY" not in run.stdout
    assert seen["os.environ"]["HOME"] == "/job"
    assert seen["os.environ"]["HF_HUB_OFFLINE"] == "1"
    assert len(seen["pids"]) < 10, "host processes are visible"


def test_only_the_job_folder_and_read_only_binds_are_visible(
    run_script: ScriptRunner, job_dir: Path, tmp_path: Path, token: str
) -> None:
    other_job = tmp_path / "other-job"
    other_job.mkdir()
    (other_job / "secret.txt").write_text(token)
    project_root = Path(sys.prefix).parent  # /work/main: code, settings, .env...
    run = run_script(
        """
        import json, os, sys
        paths = json.loads(sys.argv[1])
        print(json.dumps({
            "exists": {p: os.path.exists(p) for p in paths["hidden"]},
            "code": sorted(os.listdir("/code")),
            "etc": sorted(os.listdir("/etc")),
            "usr": sorted(os.listdir("/usr")),
            "prefix": [sys.prefix, sys.base_prefix, sys.executable],
        }))
        """,
        json.dumps(
            {
                "hidden": [
                    str(other_job / "secret.txt"),
                    str(job_dir),
                    "/root/.ssh",
                    "/etc/shadow",
                    "/etc/passwd",
                    "/var/lib/postgresql",
                    str(project_root),
                    sys.prefix,
                    sys.base_prefix,
                    "/sys/fs/cgroup",
                    "/usr/local/etc",
                    "/usr/share",
                ],
            }
        ),
        ro_binds={str(Path(__file__).resolve().parents[2] / "labs"): "/code/labs"},
    )
    assert run.lines, run.result.stderr_tail
    seen = json.loads(run.lines[-1])
    assert seen["exists"] == dict.fromkeys(seen["exists"], False)
    assert seen["code"] == ["labs"]
    assert set(seen["etc"]) <= {"ld.so.cache", "localtime"}
    # Of /usr, only library folders and the sandbox's own tools; the interpreter's prefix
    # at /python, its venv made again at /venv.
    assert set(seen["usr"]) <= {"lib", "lib64", "bin"}
    assert seen["prefix"] == ["/venv", "/python", "/venv/bin/python"]
    assert token not in run.stdout


def test_the_sandbox_names_no_host_path_or_job_in_its_command_lines_or_job_mount(
    tmp_path: Path, token: str, strict: Capabilities
) -> None:
    # A job folder named like a submission's (jobs/<id>) somewhere under the project's tree.
    job_dir = tmp_path / "jobs" / token
    job_dir.mkdir(parents=True)
    (job_dir / "main.py").write_text(
        textwrap.dedent("""
        import json, os
        cmdlines = {
            pid: open(f"/proc/{pid}/cmdline", "rb").read().decode("utf-8", "replace")
            for pid in os.listdir("/proc") if pid.isdigit()
        }
        print(json.dumps({"cmdlines": cmdlines, "mountinfo": open("/proc/self/mountinfo").read()}))
        """)
    )
    lines: list[str] = []
    result = run_sandboxed(
        argv=[VENV_PYTHON, "-I", "/job/main.py"],
        job_dir=str(job_dir),
        limits=FAST_LIMITS,
        mode=SandboxMode.STRICT,
        on_stdout_line=lines.append,
        capabilities=strict,
    )
    assert result.outcome == "ok", result.stderr_tail
    seen = json.loads(lines[-1])
    host_paths = [str(tmp_path), token, sys.prefix, sys.base_prefix, str(Path(sys.prefix).parent)]
    for pid, cmdline in seen["cmdlines"].items():
        for path in host_paths:
            assert path not in cmdline, f"/proc/{pid}/cmdline shows {path}: {cmdline}"
    job_mounts = [line for line in seen["mountinfo"].splitlines() if line.split()[4] == "/job"]
    assert len(job_mounts) == 1
    for path in (str(tmp_path), token):
        assert path not in seen["mountinfo"]
    if strict.job_quota:
        assert job_mounts[0].split()[3] == "/"  # a tmpfs of its own, not a host folder
        assert result.disk_enforcement == "tmpfs"


def test_read_only_binds_and_the_system_cannot_be_written(run_script: ScriptRunner) -> None:
    run = run_script(
        """
        import errno, json, os, sys
        seen = {}
        for path in ["/code/labs/evil.py", "/usr/evil", "/evil", "/etc/evil", sys.prefix + "/evil",
                     "/job/fine", "/tmp/fine", "/dev/shm/fine"]:
            try:
                open(path, "w").write("x")
                seen[path] = "written"
            except OSError as exc:
                seen[path] = errno.errorcode[exc.errno]
        print(json.dumps(seen))
        """,
        ro_binds={str(Path(__file__).resolve().parents[2] / "labs"): "/code/labs"},
    )
    seen = json.loads(run.lines[-1])
    written = {path for path, what in seen.items() if what == "written"}
    assert written == {"/job/fine", "/tmp/fine", "/dev/shm/fine"}
    assert {what for path, what in seen.items() if path not in written} <= {"EROFS", "EACCES"}
    assert not (Path(__file__).resolve().parents[2] / "labs" / "evil.py").exists()


def test_program_that_ignores_sigterm_is_killed_after_the_grace_period(
    run_script: ScriptRunner, job_dir: Path, token: str
) -> None:
    run = run_script(
        """
        import signal, time
        def note_and_ignore(signum, frame):
            with open("/job/term.log", "a") as fh:
                fh.write("term\\n")
        signal.signal(signal.SIGTERM, note_and_ignore)
        print("ready", flush=True)
        while True:
            time.sleep(0.05)
        """,
        token,
        limits=Limits(wall_seconds=3, cpu_seconds=60, memory_mb=256),
        kill_grace_seconds=1,
    )
    assert run.lines == ["ready"]
    assert run.result.outcome == "timeout"
    # SIGTERM reached the program itself (not just bwrap), then SIGKILL came.
    assert (job_dir / "term.log").read_text() == "term\n"
    assert 4 <= run.result.wall_seconds < 3 + 1 + 3
    assert processes_with(token) == []


def test_should_stop_cancels_the_run(run_script: ScriptRunner, token: str) -> None:
    lines: list[str] = []
    run = run_script(
        """
        import time
        print("started", flush=True)
        time.sleep(600)
        """,
        token,
        on_stdout_line=lines.append,
        should_stop=lambda: "started" in lines,
    )
    assert run.result.outcome == "cancelled"
    assert run.result.detail == "The run was cancelled."
    assert run.result.wall_seconds < 15
    assert processes_with(token) == []


def _memory_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def test_huge_stdout_hits_the_output_limit_without_filling_our_memory(
    run_script: ScriptRunner,
) -> None:
    received = [0]

    def count(line: str) -> None:
        received[0] += len(line) + 1

    Path("/proc/self/clear_refs").write_text("5")  # reset our peak RSS (VmHWM)
    rss_before = _memory_kb("VmRSS")
    run = run_script(
        """
        import sys
        block = ("x" * 1023 + "\\n") * 1024  # 1 MB of lines
        for _ in range(100):
            sys.stdout.write(block)
        """,
        on_stdout_line=count,
    )
    growth_mb = (_memory_kb("VmHWM") - rss_before) / 1024
    assert run.result.outcome == "output_limit"
    assert run.result.detail.startswith("The program printed more than 50 MB")
    assert MAX_STDOUT_BYTES - (1 << 20) <= received[0] <= MAX_STDOUT_BYTES + MAX_LINE_BYTES
    assert growth_mb < 30, f"the parent's peak memory grew by {growth_mb:.0f} MB"


def test_a_line_without_newline_is_cut_at_64_kib(run_script: ScriptRunner) -> None:
    run = run_script("""
        import sys
        sys.stdout.write("y" * (10 << 20) + "\\nafter\\n")
    """)
    assert run.result.outcome == "ok"
    assert [len(line) for line in run.lines] == [MAX_LINE_BYTES, 5]
    assert run.lines[1] == "after"


def test_non_utf8_output_is_replaced_not_fatal(run_script: ScriptRunner) -> None:
    run = run_script("""
        import sys
        sys.stdout.buffer.write(b"score \\xff\\xfe done\\n")
        sys.stderr.buffer.write(b"warning \\x80\\xc3 end\\n" * 3000)
        sys.exit(3)
    """)
    assert run.result.outcome == "exited"
    assert run.result.returncode == 3
    assert run.result.detail == "The program exited with status 3."
    assert run.lines == ["score \ufffd\ufffd done"]
    assert run.result.stderr_tail.startswith("[... earlier output cut ...]\n")
    assert "warning \ufffd\ufffd end" in run.result.stderr_tail
    assert len(run.result.stderr_tail) <= STDERR_TAIL_BYTES + 40


def test_background_process_does_not_outlive_the_run(
    run_script: ScriptRunner, job_dir: Path, token: str
) -> None:
    run = run_script(
        """
        import os, sys, time
        beat = "import time\\nwhile True:\\n open('/job/heartbeat', 'a').write('.')\\n time.sleep(0.1)"
        if os.fork() == 0:  # double fork + setsid: a classic daemon
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", beat, sys.argv[1]])
            os._exit(0)
        while not os.path.exists("/job/heartbeat"):
            time.sleep(0.05)
        print("daemon running", flush=True)
        """,
        token,
    )
    assert run.lines == ["daemon running"]
    assert processes_with(token) == []
    beats = (job_dir / "heartbeat").stat().st_size
    time.sleep(1)
    assert (job_dir / "heartbeat").stat().st_size == beats, "the daemon still writes"


def test_sandbox_dies_with_the_worker(job_dir: Path, token: str) -> None:
    (job_dir / "main.py").write_text("import time\nprint('up', flush=True)\ntime.sleep(600)\n")
    worker = textwrap.dedent(f"""
        from sandbox import Limits, run_sandboxed
        run_sandboxed(
            argv=[{VENV_PYTHON!r}, "/job/main.py", {token!r}],
            job_dir={str(job_dir)!r},
            limits=Limits(wall_seconds=600, cpu_seconds=600, memory_mb=256),
            mode="strict",
            on_stdout_line=print,
        )
    """)
    project = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [VENV_PYTHON, "-c", worker], cwd=project, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "up\n"
    assert processes_with(token)
    proc.kill()  # SIGKILL: the worker gets no chance to clean up
    proc.wait()
    for _ in range(50):
        if not processes_with(token):
            break
        time.sleep(0.1)
    assert processes_with(token) == []


def test_failing_callback_stops_the_sandbox_and_propagates(
    run_script: ScriptRunner, token: str
) -> None:
    def explode(line: str) -> None:
        raise RuntimeError("progress store is down")

    with pytest.raises(RuntimeError, match="progress store is down"):
        run_script(
            """
            import time
            print("progress", flush=True)
            time.sleep(600)
            """,
            token,
            on_stdout_line=explode,
        )
    assert processes_with(token) == []


def test_sandbox_that_cannot_start_is_a_platform_error(run_script: ScriptRunner) -> None:
    with pytest.raises(SandboxError, match="failed before the program started"):
        run_script("print('never')", cwd_inside="/no/such/folder")


def test_torch_with_dataloader_workers_runs_within_the_memory_limit(
    run_script: ScriptRunner,
) -> None:
    run = run_script(
        """
        import json, torch
        from torch.utils.data import DataLoader, TensorDataset
        data = TensorDataset(torch.arange(64, dtype=torch.float32).unsqueeze(1))
        total = sum(float(batch[0].sum()) for batch in DataLoader(data, batch_size=8, num_workers=2))
        model = torch.nn.Linear(1, 2)
        model(torch.ones(4, 1)).sum().backward()
        peak_mb = __import__("resource").getrusage(0).ru_maxrss // 1024
        print(json.dumps({"torch": torch.__version__, "total": total, "peak_mb": peak_mb}))
        """,
        limits=Limits(wall_seconds=240, cpu_seconds=240, memory_mb=1024),
    )
    assert run.result.outcome == "ok", run.result.stderr_tail
    seen = json.loads(run.lines[-1])
    assert seen["torch"].startswith("2.")
    assert seen["total"] == sum(range(64))


SYSTEM_PYTHON = Path("/usr/bin/python3.11")


@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no system Python 3.11 here")
def test_a_venv_of_the_systems_own_python_runs_with_its_packages(
    tmp_path: Path, strict: Capabilities
) -> None:
    # Debian's Python looks for no site-packages beside its standard library (its site.py
    # knows dist-packages): only a venv made again inside finds the venv's packages.
    venv = tmp_path / "venv"
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True)
    package = venv / "lib" / "python3.11" / "site-packages" / "probe_package"
    package.mkdir()
    (package / "__init__.py").write_text("ANSWER = 42\n")
    for path in [tmp_path, *venv.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    job = tmp_path / "job"
    job.mkdir()
    (job / "main.py").write_text(
        "import json, sqlite3, ssl, sys, probe_package\n"
        "print(json.dumps([sys.prefix, sys.base_prefix, probe_package.ANSWER]))\n"
    )
    lines: list[str] = []
    result = run_sandboxed(
        argv=[str(venv / "bin" / "python"), "-I", "/job/main.py"],
        job_dir=str(job),
        limits=FAST_LIMITS,
        mode=SandboxMode.STRICT,
        on_stdout_line=lines.append,
        capabilities=strict,
    )
    assert result.outcome == "ok", result.stderr_tail
    assert json.loads(lines[-1]) == ["/venv", "/python", 42]


def test_a_device_node_is_there_only_when_the_policy_names_it(run_script: ScriptRunner) -> None:
    """How a GPU reaches a run (its /dev/nvidia* nodes); /dev/fuse stands in for one here:
    a character device that bubblewrap's minimal /dev does not have."""
    probe = "import os, stat; print(os.path.exists('/dev/fuse') and stat.S_ISCHR(os.stat('/dev/fuse').st_mode))"

    without = run_script(probe)
    named = run_script(probe, devices=("/dev/fuse",))

    assert without.result.ok and without.lines == ["False"], without.result.stderr_tail
    assert named.result.ok and named.lines == ["True"], named.result.stderr_tail
    assert named.result.devices == ("/dev/fuse",) and without.result.devices == ()


def test_only_character_devices_are_passed(run_script: ScriptRunner, tmp_path: Path) -> None:
    (tmp_path / "not-a-device").write_text("")
    for path in (str(tmp_path / "not-a-device"), "/etc", "relative/nvidia0"):
        with pytest.raises((ValueError, FileNotFoundError)):
            run_script("print(1)", devices=(path,))


def test_the_nvidia_nodes_are_found_by_kind_not_by_name(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(tmp_path / "nvidia0", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(tmp_path / "nvidiactl", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    (tmp_path / "nvidia-notes").write_text("a file, not a device")

    assert nvidia_device_nodes(str(tmp_path)) == (
        str(tmp_path / "nvidia0"),
        str(tmp_path / "nvidiactl"),
    )
