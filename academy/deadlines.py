"""A bound on a database call that hangs.

A call on a connection whose path has stopped moving packets — a stuck server, a
partition, a pooler or proxy that still acknowledges — waits forever: the client's
kernel sees its data acknowledged and a quiet peer, so neither the libpq keepalives nor
`tcp_user_timeout` fire, and `statement_timeout` runs on a server that never got the
query. Here a timer shuts the connection's socket when a call overruns: the caller gets
the OperationalError of a dropped connection, which the worker already survives (it
trains on and writes later), and the next call reconnects within `connect_timeout`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)

_bounded = threading.local()


def _active_aliases() -> set[str]:
    """The database aliases this thread is inside a deadline for."""
    if not hasattr(_bounded, "aliases"):
        _bounded.aliases = set()
    return _bounded.aliases


@contextlib.contextmanager
def database_deadline(
    seconds: float | None = None, *, using: str = DEFAULT_DB_ALIAS
) -> Iterator[None]:
    """The database work in the block (queries, commit, health check) may take `seconds`
    in all (ACADEMY_DATABASE_CALL_SECONDS by default); past that its connection is shut.

    Nested blocks keep the outer deadline, which is the earlier one."""
    wrapper = connections[using]
    active = _active_aliases()
    if wrapper.vendor != "postgresql" or using in active:  # SQLite: a local file, nothing hangs
        yield
        return
    limit = settings.ACADEMY_DATABASE_CALL_SECONDS if seconds is None else seconds
    lock = threading.Lock()
    inside = [True]

    def expire() -> None:
        with lock:  # never shut a connection after the block has let go of it
            if inside[0]:
                _shut(wrapper, limit)

    timer = threading.Timer(limit, expire)
    timer.daemon = True
    active.add(using)
    timer.start()
    try:
        yield
    finally:
        with lock:
            inside[0] = False
        timer.cancel()
        active.discard(using)


@contextlib.contextmanager
def database_calls_bounded(
    seconds: float | None = None, *, using: str = DEFAULT_DB_ALIAS
) -> Iterator[None]:
    """Every query in the block gets its own `database_deadline`.

    A transaction's COMMIT is not a query: wrap an atomic block in `database_deadline`
    to bound it too."""
    wrapper = connections[using]
    if wrapper.vendor != "postgresql":
        yield
        return

    def bounded(execute: Callable[..., Any], *args: Any) -> Any:
        with database_deadline(seconds, using=using):
            return execute(*args)

    # Django health-checks a reused connection before its first query, outside the query
    # wrappers: do it here, under a deadline, so the first query finds it done.
    with database_deadline(seconds, using=using):
        wrapper.close_if_health_check_failed()
    with wrapper.execute_wrapper(bounded):
        yield


def _shut(wrapper: BaseDatabaseWrapper, limit: float) -> None:
    raw = wrapper.connection
    if raw is None or raw.closed:  # still connecting: connect_timeout bounds that
        return
    try:
        fd = raw.fileno()
    except Exception:  # closed in the meantime by its own thread
        return
    # shutdown, not close: the descriptor stays libpq's; the blocked read sees EOF at once.
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)
    logger.warning("A database call waited more than %s s: its connection was shut", limit)
