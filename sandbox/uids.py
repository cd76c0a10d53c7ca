"""A uid of its own per concurrent run, where no pids cgroup can cap a run's tasks.

RLIMIT_NPROC counts every process of a uid on the whole machine: with one uid for every
run, one run's fork bomb leaves no process for another learner's run. A lease is an
flock on one file per uid under RUNTIME_DIR/uids, held for the run and released with its
file descriptor, so a worker that dies frees its uids at once and two workers on one
machine never share one.
"""

from __future__ import annotations

import fcntl
import os
from types import TracebackType

from sandbox.policy import RUNTIME_DIR, SandboxError

LEASES = os.path.join(RUNTIME_DIR, "uids")


class UidLease:
    """`with UidLease(first, last) as uid:` a uid of the range no other run holds now."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self._fd: int | None = None

    def __enter__(self) -> int:
        os.makedirs(LEASES, mode=0o700, exist_ok=True)
        for uid in range(self.first, self.last + 1):
            fd = os.open(
                os.path.join(LEASES, f"{uid}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._fd = fd
            return uid
        raise SandboxError(
            f"Every sandbox uid ({self.first}-{self.last}) is in use by a run on this machine."
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
