"""Fault injection around real workers: kills, a broker restart, a database cut or hang, a full
disk.

Each fault is repeated ACADEMY_FAULT_TRIALS times (1 by default, for CI; the report run,
`bench/faults.py`, uses 10) with varied timing. Every trial is recorded: the table is
printed at the end of the session and, with ACADEMY_FAULT_REPORT=path, appended to that
file as JSON lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from labs.datasets import parse_dataset
from labs.models import Lab, Submission
from labs.services.datasets import dataset_import
from tests.conftest import TINY_SOLUTION, Worker, wait_for
from tests.factories import ModuleFactory
from tests.faults.report import ContainmentRecord, TrialRecord, containment_table, fault_table

FAULT_TRIALS = int(os.environ.get("ACADEMY_FAULT_TRIALS", "1"))
# Three epochs: long enough to land a kill anywhere in training.
FAULT_SOLUTION = TINY_SOLUTION.replace('"epochs": 2', '"epochs": 3')


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: injects a fault around a real worker")


@dataclass
class FaultLog:
    records: list[TrialRecord] = field(default_factory=list)
    containment: list[ContainmentRecord] = field(default_factory=list)

    def add(self, record: TrialRecord | ContainmentRecord) -> None:
        if isinstance(record, ContainmentRecord):
            self.containment.append(record)
        else:
            self.records.append(record)
        if path := os.environ.get("ACADEMY_FAULT_REPORT"):
            with open(path, "a") as out:
                out.write(json.dumps({"kind": type(record).__name__, **asdict(record)}) + "\n")


_LOG = FaultLog()


@pytest.fixture
def fault_log() -> FaultLog:
    return _LOG


def pytest_terminal_summary(terminalreporter) -> None:
    if _LOG.records:
        terminalreporter.section("fault trials")
        for line in fault_table(_LOG.records):
            terminalreporter.write_line(line)
    if _LOG.containment:
        terminalreporter.section("containment trials")
        for line in containment_table(_LOG.containment):
            terminalreporter.write_line(line)


def rng_for(fault: str, trial: int) -> random.Random:
    """Varied but reproducible timing per trial."""
    return random.Random(f"{fault}-{trial}")


# --- a lab whose grading takes long enough to be hit -----------------------------------------


def _dataset_bytes(train_per_label: int, heldout_per_label: int) -> tuple[bytes, bytes]:
    words = {
        "good": "great gain profit rally up",
        "bad": "loss crash fall down miss",
        "meh": "flat report meeting update agenda",
    }
    train, heldout = ["text,label"], ["text,label"]
    for label, vocab in words.items():
        tokens = vocab.split()
        for i in range(train_per_label):
            train.append(f"{tokens[i % 5]} {tokens[(i + 2) % 5]} number {i},{label}")
        for i in range(heldout_per_label):
            heldout.append(
                f"{tokens[(i + 1) % 5]} {tokens[(i + 3) % 5]} held {i} "
                f"{' '.join(tokens[(i + k) % 5] for k in range(i % 24))},{label}"
            )
    return "\n".join(train).encode(), "\n".join(heldout).encode()


@pytest.fixture
def fault_lab(db, course, tiny_model) -> Lab:
    train, heldout = _dataset_bytes(40, 1200)
    dataset, _ = dataset_import(
        slug="fault-sentiment",
        title="Fault sentiment",
        license_name="CC0 (made up for tests)",
        source_markdown="# Faults\n\nMade up for tests.",
        parsed=parse_dataset(train=train, heldout=heldout),
    )
    module = ModuleFactory(
        course=course, stage=course.stages.get(slug="basics"), slug="fault-lab", kind="lab"
    )
    return Lab.objects.create(
        module=module,
        dataset=dataset,
        base_model=tiny_model,
        starter_code="HYPERPARAMETERS = {}\n",
        reference_solution=TINY_SOLUTION,
        required_hooks=["preprocess"],
        wall_time_seconds=120,
        memory_mb=3072,
        max_epochs=3,
        attempts_per_day=500,
        baseline=0.34,
        target=0.9,
        pass_mark=60,
    )


# --- workers --------------------------------------------------------------------------------


@pytest.fixture
def second_worker(worker, tmp_path) -> Iterator[Worker]:
    """A standby on the same machine and job folder: it picks up what a killed one leaves."""
    other = Worker(worker.jobs_dir, tmp_path / "worker-2.log")
    other.start()
    yield other
    other.kill()


def owner_of(submission: Submission, workers: list[Worker]) -> Worker | None:
    for w in workers:
        if w.name and submission.worker.startswith(w.name + "@"):
            return w
    return None


def restart_in_background(w: Worker) -> threading.Thread:
    thread = threading.Thread(target=w.start, daemon=True)
    thread.start()
    return thread


def fresh(submission: Submission) -> Submission:
    submission.refresh_from_db()
    return submission


def wait_final(submission: Submission, workers: list[Worker], timeout: float = 180) -> Submission:
    return wait_for(
        lambda: fresh(submission).status in Submission.FINAL and submission,
        timeout=timeout,
        interval=0.1,
        message=lambda: (
            f"#{submission.pk} final (is {submission.status})\n"
            + "\n".join(w.log()[-3000:] for w in workers)
        ),
    )


# --- servers of our own: Redis on a free port, a TCP proxy ------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private redis-server (no persistence: a restart loses every message, the worst case)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10, interval=0.05, message="redis-server up")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    from academy.celery import app

    server = RedisServer(tmp_path)
    server.start()
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    # This process publishes the wake-ups of the runs it creates: to our server, too.
    app.conf.broker_url = server.url
    app.conf.broker_transport_options = {"visibility_timeout": 3600}
    app._pool = None
    app.amqp._producer_pool = None
    yield server
    app.conf.broker_url, app.conf.broker_transport_options = saved
    app._pool = None
    app.amqp._producer_pool = None
    server.kill()


class TcpProxy:
    """Forwards a port to the database.

    `cut()` drops every connection and refuses new ones (a database that goes away);
    `freeze()` forwards nothing more either way while closing nothing, and parks new
    connections unanswered (a stuck server, a partition that drops packets): the
    proxy's kernel still acknowledges what the client sends, as a real stuck server's
    does, so no TCP timeout of the client ever fires. `thaw()` lets the traffic flow on,
    or with `cut=True` ends the frozen connections instead.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down = threading.Event()
        self.flowing = threading.Event()
        self.flowing.set()
        self.sockets: list[socket.socket] = []
        self.accepted = 0  # connections the client opened, parked ones included
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down.is_set():
                client.close()  # the database is "down": the connection ends at once
                continue
            with self.lock:
                self.accepted += 1
                self.sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self.flowing.wait()  # frozen: accepted, but the database never answers
        if self.down.is_set():
            client.close()
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        # The timeout was for connecting: an idle database connection must not end
        # after 5 s, only when the test cuts it.
        upstream.settimeout(None)
        with self.lock:
            self.sockets.append(upstream)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.flowing.wait()  # frozen: held, as a partition holds what TCP resends
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.down.set()
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
                s.close()

    def restore(self) -> None:
        self.down.clear()

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self, *, cut: bool = False) -> None:
        """Resume the held traffic, or (cut=True) drop the frozen connections first;
        a cut proxy refuses new connections until `restore()`."""
        if cut:
            self.cut()
        self.flowing.set()

    def close(self) -> None:
        self.cut()
        self.flowing.set()
        self.listener.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.worker)
