"""Each run's own process limit and job-folder quota, through the real STRICT sandbox.

Every run runs as uid 65534 unless given another, and RLIMIT_NPROC counts a uid's
processes machine-wide: without a limit of its own per run, one learner's fork bomb makes
another learner's run fail. Without a quota on the job folder, one run fills the
worker's disk.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
from pathlib import Path

import pytest

from sandbox import Capabilities, Limits, SandboxMode, run_sandboxed
from sandbox.jobspace import SPACES, job_files_limit
from tests.sandbox.conftest import VENV_PYTHON, ScriptRunner

pytestmark = pytest.mark.usefixtures("strict")

# Forks children that sleep until EAGAIN, says how many it holds, then holds them.
HOLDING_BOMB = """
import os, time
held = 0
while True:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(600)
        os._exit(0)
    held += 1
print("holding", held, flush=True)
time.sleep(600)
"""

# An ordinary run's use of processes: a few threads and child processes, waited for.
ORDINARY = """
import os, subprocess, sys, threading
threads = [threading.Thread(target=sum, args=(range(1000),)) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
children = [subprocess.Popen([sys.executable, "-c", "pass"]) for _ in range(4)]
print("ok", [child.wait() for child in children], flush=True)
"""

LIMITS = Limits(wall_seconds=60, cpu_seconds=60, memory_mb=512, max_processes=24)


def _process_capabilities(strict: Capabilities, enforcement: str) -> Capabilities:
    if enforcement == "uid":
        if not (strict.is_root and strict.uid_range):
            pytest.skip("a uid per run needs root and a usable uid range")
        return dataclasses.replace(strict, pids_cgroup=None)
    if strict.pids_cgroup is None:
        pytest.skip("no writable pids cgroup here")
    return strict


def _sandbox(job: Path, source: str, caps: Capabilities, **kwargs: object):
    job.mkdir(exist_ok=True)
    (job / "main.py").write_text(source)
    lines: list[str] = []
    kwargs.setdefault("on_stdout_line", lines.append)
    kwargs.setdefault("limits", LIMITS)
    result = run_sandboxed(
        argv=[VENV_PYTHON, "-I", "/job/main.py"],
        job_dir=str(job),
        mode=SandboxMode.STRICT,
        poll_seconds=0.1,
        capabilities=caps,
        **kwargs,  # type: ignore[arg-type]
    )
    return result, lines


@pytest.mark.parametrize("enforcement", ["cgroup", "uid"])
def test_a_fork_bomb_in_one_run_leaves_another_run_its_processes(
    tmp_path: Path, strict: Capabilities, enforcement: str
) -> None:
    caps = _process_capabilities(strict, enforcement)
    holding = threading.Event()
    done = threading.Event()
    bomb: dict[str, object] = {}

    def see(line: str) -> None:
        if line.startswith("holding"):
            bomb["held"] = int(line.split()[1])
            holding.set()

    def run_bomb() -> None:
        bomb["result"], _ = _sandbox(
            tmp_path / "bomb", HOLDING_BOMB, caps, on_stdout_line=see, should_stop=done.is_set
        )
        holding.set()

    thread = threading.Thread(target=run_bomb)
    thread.start()
    try:
        assert holding.wait(60), "the bomb never reached its limit"
        result, lines = _sandbox(tmp_path / "ordinary", ORDINARY, caps)
    finally:
        done.set()
        thread.join(60)
    assert 0 < int(bomb["held"]) < LIMITS.max_processes  # type: ignore[call-overload]
    assert result.outcome == "ok", result.stderr_tail
    assert lines == ["ok [0, 0, 0, 0]"]
    assert result.process_enforcement == enforcement
    assert bomb["result"].outcome == "cancelled"  # type: ignore[attr-defined]


@pytest.mark.parametrize("enforcement", ["cgroup", "uid"])
def test_a_run_that_fails_at_its_own_process_limit_is_told_so(
    tmp_path: Path, strict: Capabilities, enforcement: str
) -> None:
    caps = _process_capabilities(strict, enforcement)
    result, _ = _sandbox(
        tmp_path / "job",
        "import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(60)\n",
        caps,
    )
    assert result.outcome == "processes", result.stderr_tail
    assert result.detail.startswith("Your run tried to start more than its 24 processes")


# --------------------------------------------------------------------------
# The job folder's quota


@pytest.fixture
def quota(strict: Capabilities) -> Capabilities:
    if not strict.job_quota:
        pytest.skip("no job folder quota here (needs root): " + strict.describe())
    return strict


def _on_disk(folder: Path) -> int:
    """Bytes the folder's files take on the worker's disk (allocated blocks, not sizes)."""
    return sum(
        os.lstat(os.path.join(parent, name)).st_blocks * 512
        for parent, _, names in os.walk(folder)
        for name in names
    )


FILL_WITH_SMALL_FILES = """
import errno, os
os.mkdir("/job/junk")
written = 0
try:
    while True:
        with open(f"/job/junk/{written}.bin", "wb") as out:
            out.write(os.urandom(256 * 1024))
        written += 1
except OSError as exc:
    print(errno.errorcode[exc.errno], written, flush=True)
    raise
"""


def test_a_run_that_fills_its_job_folder_hits_its_own_quota(
    tmp_path: Path, quota: Capabilities
) -> None:
    job = tmp_path / "job"
    result, lines = _sandbox(
        job,
        FILL_WITH_SMALL_FILES,
        quota,
        limits=Limits(wall_seconds=60, cpu_seconds=60, memory_mb=512, disk_mb=32),
    )
    errname, written = lines[-1].split()
    assert errname == "ENOSPC"
    assert 100 <= int(written) <= 128  # 256 KB files in 32 MB, with the job's own files
    assert result.outcome == "disk", result.stderr_tail
    assert result.disk_enforcement == "tmpfs"
    assert result.detail.startswith("Your run wrote more than its 32 MB of disk")
    # What the run left is back in its folder, and no more than the quota.
    assert len(list((job / "junk").iterdir())) >= 100
    assert _on_disk(job) <= 32 << 20
    # The quota's tmpfs is gone (its memory with it).
    assert f"{SPACES}/{os.getpid()}-" not in Path("/proc/self/mountinfo").read_text()
    assert not [name for name in os.listdir(SPACES) if name.startswith(f"{os.getpid()}-")]


def test_a_run_that_makes_too_many_files_hits_its_own_quota(
    tmp_path: Path, quota: Capabilities
) -> None:
    result, _ = _sandbox(
        tmp_path / "job",
        "import os\nn = 0\nwhile True:\n    open(f'/job/{n}', 'w').close()\n    n += 1\n",
        quota,
        limits=Limits(wall_seconds=60, cpu_seconds=60, memory_mb=512, disk_mb=32),
    )
    assert result.outcome == "disk", result.stderr_tail
    files = f"{job_files_limit(32):,}"
    assert result.detail.startswith(f"Your run made more than its {files} files")


def test_what_comes_back_from_the_quota_is_plain_and_bounded(
    tmp_path: Path, quota: Capabilities
) -> None:
    job = tmp_path / "job"
    result, _ = _sandbox(
        job,
        """
import os
os.makedirs("/job/checkpoint")
open("/job/checkpoint/config.json", "w").write("{}")
os.symlink("/etc/shadow", "/job/checkpoint/model.safetensors")
os.mkfifo("/job/pipe")
with open("/job/sparse.bin", "wb") as out:  # 400 MB apparent, nothing written
    out.truncate(400 << 20)
""",
        quota,
        limits=Limits(wall_seconds=60, cpu_seconds=60, memory_mb=512, disk_mb=32),
    )
    assert result.outcome == "ok", result.stderr_tail
    assert (job / "checkpoint" / "config.json").read_text() == "{}"
    # A planted link comes back as the link it was (never followed), for the grader to refuse.
    assert os.readlink(job / "checkpoint" / "model.safetensors") == "/etc/shadow"
    assert not (job / "pipe").exists()
    # A sparse file bigger than the quota would fill the worker's disk once copied.
    assert not (job / "sparse.bin").exists()
    assert _on_disk(job) < 1 << 20


def test_the_quota_of_a_worker_that_died_is_released_by_the_next_run(
    tmp_path: Path, quota: Capabilities, run_script: ScriptRunner
) -> None:
    # A space named for a pid no process has (beyond pid_max): its worker is gone.
    stale = Path(SPACES) / "99999999-stale"
    stale.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "job", str(stale)], check=True)
    try:
        run = run_script("print('ran')")
        assert run.lines == ["ran"]
        assert not os.path.ismount(stale)
        assert not stale.exists()
    finally:
        if os.path.ismount(stale):
            subprocess.run(["umount", "-l", str(stale)], check=False)
        if stale.exists():
            stale.rmdir()
