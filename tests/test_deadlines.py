"""Deadlines on database calls, against a real PostgreSQL: a server that does not answer
(here: busy in pg_sleep) gets its connection shut, a prompt one is left alone.

The network-path hang itself, through a frozen proxy and a real worker, is in
tests/faults/test_infrastructure.py."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from django.db import OperationalError, connection

from academy.deadlines import database_calls_bounded, database_deadline

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql() -> Iterator[None]:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has no connection that can hang")
    yield
    connection.close()  # a connection shut by a deadline is never reused


def sleep_in_server(seconds: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])


@pytest.fixture
def end_sleepers() -> Iterator[None]:
    """The server goes on sleeping for a client that left: end those sessions, or dropping
    the test database at the end would wait for them."""
    yield
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
    ) as other:
        other.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep%' "
            "AND pid <> pg_backend_pid()"
        )


def test_a_call_past_its_deadline_fails_like_a_dropped_connection(end_sleepers):
    started = time.monotonic()
    with pytest.raises(OperationalError), database_deadline(1):
        sleep_in_server(30)
    assert time.monotonic() - started < 5
    connection.close()
    with connection.cursor() as cursor:  # the next call reconnects
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_a_prompt_call_keeps_its_connection_after_the_deadline_would_have_passed():
    with database_deadline(0.5):
        sleep_in_server(0.1)
    backend = connection.connection.info.backend_pid
    time.sleep(1)  # the timer was cancelled: nothing shuts the connection now
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone() == (backend,)


def test_bounded_calls_each_get_their_own_deadline(end_sleepers):
    with database_calls_bounded(1):
        for _ in range(3):  # 1.2 s in all, each call well within its second
            sleep_in_server(0.4)
        with pytest.raises(OperationalError):
            sleep_in_server(30)
