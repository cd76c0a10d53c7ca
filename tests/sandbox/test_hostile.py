"""More hostile learner programs, each contained and reported: raw syscalls through
ctypes, setuid binaries and LD_PRELOAD, /proc tricks, the host's unix sockets,
and threads meant to outlive the run."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from tests.sandbox.conftest import ScriptRunner

pytestmark = pytest.mark.usefixtures("strict")

POSTGRES_SOCKET = "/var/run/postgresql/.s.PGSQL.5432"


def test_raw_syscalls_through_ctypes_cannot_regain_privileges(run_script: ScriptRunner) -> None:
    run = run_script("""
        import ctypes, errno, json, os
        libc = ctypes.CDLL("libc.so.6", use_errno=True)

        def call(name, *args):
            result = getattr(libc, name)(*args)
            return "ok" if result == 0 else errno.errorcode[ctypes.get_errno()]

        CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET = 0x10000000, 0x00020000, 0x40000000
        print(json.dumps({
            "setuid(0)": call("setuid", 0),
            "unshare(user)": call("unshare", CLONE_NEWUSER),
            "unshare(mount)": call("unshare", CLONE_NEWNS),
            "unshare(net)": call("unshare", CLONE_NEWNET),
            "mount": call("mount", b"none", b"/job", b"tmpfs", 0, None),
            "chroot": call("chroot", b"/job"),
            "ptrace(attach 1)": call("ptrace", 16, 1, None, None),
            "uid": os.getuid(),
        }))
    """)
    seen = json.loads(run.lines[-1])
    assert seen.pop("uid") == 65534
    assert all(outcome in {"EPERM", "EACCES", "ENOSPC", "EINVAL"} for outcome in seen.values()), (
        seen
    )


def test_a_segfault_through_ctypes_is_reported_as_a_crash(run_script: ScriptRunner) -> None:
    run = run_script("import ctypes\nctypes.string_at(0)\n")
    assert run.result.outcome == "exited"
    assert run.result.detail == "The program was killed by signal SIGSEGV."


def test_no_setuid_tool_is_there_every_mount_is_nosuid_and_ld_preload_runs_as_nobody(
    run_script: ScriptRunner,
) -> None:
    run = run_script("""
        import json, shutil, subprocess, sys
        env = {"PATH": "/usr/bin:/bin", "LD_PRELOAD": "/job/evil.so", "LD_LIBRARY_PATH": "/job"}
        open("/job/evil.so", "wb").write(b"not a library")
        setuid_mounts = {
            line.split()[4] for line in open("/proc/self/mountinfo")
            if "nosuid" not in line.split()[5].split(",")
        }
        preloaded = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getuid(), os.geteuid())"],
            env=env, capture_output=True, text=True, timeout=30,
        )
        print(json.dumps({
            "tools": {name: shutil.which(name, path=env["PATH"]) for name in ("su", "mount", "sudo", "id")},
            "suid_mounts": sorted(setuid_mounts),
            "preloaded": [preloaded.returncode, preloaded.stdout.strip()],
        }))
    """)
    assert run.lines, run.result.stderr_tail
    seen = json.loads(run.lines[-1])
    # Only the library folders and the few tools the sandbox itself needs are mounted: no
    # su, no mount; and no mount honours a setuid or setgid bit (a library folder may hold
    # a setgid helper such as utempter).
    assert seen["tools"] == {"su": None, "mount": None, "sudo": None, "id": None}
    assert seen["suid_mounts"] == []
    # The preload fails to load (ld.so says so and goes on); nothing runs as root.
    assert seen["preloaded"] == [0, "65534 65534"]


def test_proc_does_not_lead_out_of_the_sandbox(run_script: ScriptRunner) -> None:
    run = run_script("""
        import errno, json, os

        def same_as_root(path):
            try:
                return sorted(os.listdir(path)) == sorted(os.listdir("/"))
            except OSError as exc:
                return errno.errorcode[exc.errno]

        seen = {
            "pid 1 root": same_as_root("/proc/1/root"),
            "own root": same_as_root("/proc/self/root"),
            "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        }
        for path in ("/proc/sys/kernel/core_pattern", "/proc/sysrq-trigger", "/proc/1/mem"):
            try:
                with open(path, "w") as handle:
                    handle.write("x")
                seen[path] = "written"
            except OSError as exc:
                seen[path] = errno.errorcode[exc.errno]
        print(json.dumps(seen))
    """)
    assert run.lines, run.result.stderr_tail
    seen = json.loads(run.lines[-1])
    # /proc/1 is the sandbox's own init (a new pid namespace), never the host's.
    assert seen.pop("pid 1 root") in {True, "EACCES"}
    assert seen.pop("own root") is True
    assert len(seen.pop("pids")) < 10, "host processes are visible"
    assert "written" not in seen.values(), seen


def test_host_unix_sockets_are_out_of_reach(run_script: ScriptRunner, token: str) -> None:
    # An abstract-namespace socket is reachable from any process of the host's network
    # namespace whatever the file system: prove one listens here before trying inside.
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0" + token)
    listener.listen(1)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.connect("\0" + token)
    probe.close()
    paths = [POSTGRES_SOCKET] if os.path.exists(POSTGRES_SOCKET) else []
    if os.environ.get("CI"):
        assert paths, "CI runs PostgreSQL, whose unix socket must exist out here"
    run = run_script(
        """
        import errno, json, socket, sys
        seen = {}
        for address in json.loads(sys.argv[1]):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                client.connect(address)
                seen[address] = "connected"
            except OSError as exc:
                seen[address] = errno.errorcode[exc.errno]
        print(json.dumps(seen))
        """,
        json.dumps(["\0" + token, *paths]),
    )
    listener.close()
    seen = json.loads(run.lines[-1])
    assert seen.pop("\0" + token) == "ECONNREFUSED"
    assert set(seen.values()) <= {"ENOENT"}, seen


def test_threads_do_not_outlive_the_run(
    run_script: ScriptRunner, job_dir: Path, token: str
) -> None:
    run = run_script("""
        import os, threading, time

        def beat():
            while True:
                with open("/job/heartbeat", "a") as handle:
                    handle.write(".")
                time.sleep(0.05)

        threading.Thread(target=beat, daemon=True).start()
        while not os.path.exists("/job/heartbeat"):
            time.sleep(0.05)
        print("thread running", flush=True)
        os._exit(0)  # skips the interpreter's own thread shutdown
    """)
    assert run.result.outcome == "ok"
    assert run.lines == ["thread running"]
    beats = (job_dir / "heartbeat").stat().st_size
    time.sleep(0.5)
    assert (job_dir / "heartbeat").stat().st_size == beats, "the thread still writes"
