"""A run's job folder under a quota: a size-capped tmpfs during the run, its files on disk after.

As root, the job folder's files are copied into a tmpfs of Limits.disk_mb (and a bounded
number of files) that the sandbox mounts at /job, and what the run left there comes
back to the job folder once it has ended, before the tmpfs is unmounted. A run that
fills it gets ENOSPC in its own space: the worker's disk never holds more than the
quota for a run, and only once the run is over. The tmpfs lives in memory and is
charged to the run's memory cgroup as the run writes, so the job folder also counts
against the run's memory cap.

The mount points are under RUNTIME_DIR/spaces, named by the worker's pid: a worker that
dies leaves its tmpfs mounted, and the next run on the machine unmounts it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat
import tempfile
from types import TracebackType

from sandbox.policy import JOB_FILES_PER_MB, MIB, MIN_JOB_FILES, RUNTIME_DIR, SandboxError
from sandbox.processes import try_command

logger = logging.getLogger(__name__)

SPACES = os.path.join(RUNTIME_DIR, "spaces")
# The device name the program sees for /job in its mountinfo: nothing of the host.
MOUNT_SOURCE = "job"
# Folders deeper than this are not copied back (a learner's nesting is not worth a crash).
MAX_DEPTH = 64
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class JobFilesLost(SandboxError):
    """What the run left could not be written back to the job folder (the worker's disk is
    full, most likely): the platform's fault, not the learner's."""


def job_files_limit(size_mb: int) -> int:
    return max(MIN_JOB_FILES, size_mb * JOB_FILES_PER_MB)


class JobSpace:
    """`with JobSpace(...) as space:` the run uses space.path; space.keep() brings its files back."""

    def __init__(
        self, job_dir: str, *, size_mb: int, uid: int, gid: int, mount: str, umount: str
    ) -> None:
        self.job_dir = job_dir
        self.size_mb = size_mb
        self.uid, self.gid = uid, gid
        self.mount, self.umount = mount, umount
        self.path = ""

    def __enter__(self) -> JobSpace:
        sweep_stale_spaces(self.umount)
        os.makedirs(SPACES, mode=0o700, exist_ok=True)
        self.path = tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=SPACES)
        options = (
            f"size={self.size_mb}m,nr_inodes={job_files_limit(self.size_mb)},mode=0700,"
            f"uid={self.uid},gid={self.gid},nosuid,nodev"
        )
        mounted, err = try_command(
            [self.mount, "-t", "tmpfs", "-o", options, MOUNT_SOURCE, self.path]
        )
        if not mounted:
            _rmdir_quietly(self.path)
            raise SandboxError(f"Could not mount the job folder's quota: {err}")
        try:
            _Copier(budget=None).copy(self.job_dir, self.path)
        except OSError as exc:
            self._release()
            if exc.errno == errno.ENOSPC:
                raise SandboxError(
                    f"The job folder's own files do not fit its {self.size_mb} MB quota."
                ) from exc
            raise SandboxError(f"Could not copy the job folder into its quota: {exc}") from exc
        return self

    def exhausted(self) -> str | None:
        """ "bytes" or "files" when the run filled its quota (read before it is released)."""
        usage = os.statvfs(self.path)
        if usage.f_ffree == 0:
            return "files"
        # A write fails once less than it needs is left: near-empty is full.
        if usage.f_bavail * usage.f_frsize < max(MIB, self.size_mb * MIB // 100):
            return "bytes"
        return None

    def keep(self) -> None:
        """Replace the job folder's contents with what the run left (at most the quota)."""
        _clear(self.job_dir)
        copier = _Copier(budget=self.size_mb * MIB)
        try:
            copier.copy(self.path, self.job_dir)
        except OSError as exc:
            _clear(self.job_dir)  # a partial copy must not go on filling the worker's disk
            raise JobFilesLost(
                f"Could not write the run's files back to its job folder: {exc}"
            ) from exc
        if copier.skipped:
            logger.warning(
                "Job folder %s: %s entries not copied back (FIFOs, sockets or devices, sparse "
                "files past the quota, or folders nested deeper than %s).",
                self.job_dir,
                copier.skipped,
                MAX_DEPTH,
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    def _release(self) -> None:
        unmounted, err = try_command([self.umount, self.path])
        if not unmounted:
            # Busy: a process of a BASIC-mode run still there. Detach it; the memory goes
            # when that process does (the supervisor kills it).
            unmounted, err = try_command([self.umount, "-l", self.path])
        if not unmounted:
            logger.error("Could not unmount job space %s: %s", self.path, err)
            return
        _rmdir_quietly(self.path)


def sweep_stale_spaces(umount: str) -> None:
    """Unmount the job spaces of workers that died (their pid is gone)."""
    try:
        names = os.listdir(SPACES)
    except OSError:
        return
    for name in names:
        owner = name.split("-", 1)[0]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            path = os.path.join(SPACES, name)
            if os.path.ismount(path):
                try_command([umount, "-l", path])
            _rmdir_quietly(path)


def job_quota_problem(mount: str | None, umount: str | None) -> str | None:
    """Why no job-folder quota can be set here, or None: a trial tmpfs, mounted and released."""
    if os.geteuid() != 0:
        return "not root"
    if mount is None or umount is None:
        return "mount/umount (util-linux) are missing"
    try:
        os.makedirs(SPACES, mode=0o700, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f"{os.getpid()}-probe-", dir=SPACES)
    except OSError as exc:
        return f"{SPACES} cannot be created: {exc.strerror}"
    try:
        mounted, err = try_command([mount, "-t", "tmpfs", "-o", "size=1m", MOUNT_SOURCE, probe])
        if not mounted:
            return f"a tmpfs cannot be mounted: {err}"
        try_command([umount, probe])
        return None
    finally:
        _rmdir_quietly(probe)


class _Copier:
    """Copy a folder's contents into another, following no link.

    Regular files and folders are copied; a symbolic link is made again as a link, never
    followed (the grader refuses one by name, as it would have in the job folder); FIFOs,
    sockets and devices stay behind. With a budget, files past it stay behind too: a
    sparse file's apparent size is not bounded by the tmpfs, the worker's disk is."""

    def __init__(self, *, budget: int | None) -> None:
        self.left = budget
        self.skipped = 0

    def copy(self, source: str, target: str) -> None:
        src = os.open(source, _DIR_FLAGS)
        try:
            dst = os.open(target, _DIR_FLAGS)
            try:
                self._entries(src, dst, depth=0)
            finally:
                os.close(dst)
        finally:
            os.close(src)

    def _entries(self, src: int, dst: int, *, depth: int) -> None:
        for name in os.listdir(src):
            info = os.stat(name, dir_fd=src, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode) and depth < MAX_DEPTH:
                os.mkdir(name, 0o700, dir_fd=dst)
                child_src = os.open(name, _DIR_FLAGS, dir_fd=src)
                try:
                    child_dst = os.open(name, _DIR_FLAGS, dir_fd=dst)
                    try:
                        self._entries(child_src, child_dst, depth=depth + 1)
                    finally:
                        os.close(child_dst)
                finally:
                    os.close(child_src)
            elif stat.S_ISREG(info.st_mode) and (self.left is None or info.st_size <= self.left):
                self._file(name, src, dst)
            elif stat.S_ISLNK(info.st_mode):
                os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            else:
                self.skipped += 1

    def _file(self, name: str, src: int, dst: int) -> None:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        source = os.open(name, flags, dir_fd=src)
        try:
            target = os.open(
                name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=dst,
            )
            try:
                size, copied = os.fstat(source).st_size, 0
                while copied < size:
                    sent = os.sendfile(target, source, copied, min(size - copied, 16 * MIB))
                    if sent == 0:
                        break
                    copied += sent
            finally:
                os.close(target)
        finally:
            os.close(source)
        if self.left is not None:
            self.left -= copied


def _clear(folder: str) -> None:
    """Empty a folder without following links (rmtree never does)."""
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def _rmdir_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(path)
