"""Reading what a run left in its job folder, safely: no links, regular files, bounded size."""

from __future__ import annotations

import errno
import os
import stat

from sandbox.policy import UnsafeJobFile

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
