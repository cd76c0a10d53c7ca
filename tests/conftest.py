"""Shared fixtures: fast hashing, persona users, a small course, the shipped course."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import LazySettings
from django.conf import settings as django_settings
from django.core.cache import cache, caches
from django.db import connection

from labs.datasets import parse_dataset
from labs.models import Lab
from labs.services.datasets import dataset_import
from tests.factories import CourseFactory, ModuleFactory, StageFactory, UserFactory, make_check

# Playwright's sync API runs an event loop in the test thread; Django's ORM
# refuses to run inside one unless told it is safe (it is: one thread, tests).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The tiny-model runs the tests train were calibrated in fp32; a test of the precision rule
# sets it itself. (The environment reaches the tests' worker processes too.)
os.environ.setdefault("ACADEMY_TRAINING_PRECISION", "fp32")

SHIPPED_COURSE = (
    Path(__file__).resolve().parent.parent / "courses" / "content" / "fine-tuning-at-work"
)


@pytest.fixture(scope="session", autouse=True)
def _plain_http() -> None:
    """The test client and the live server speak plain HTTP; production redirects to HTTPS.

    Session-wide and set directly: the live server builds its middleware once, at start."""
    django_settings.SECURE_SSL_REDIRECT = False


@pytest.fixture(autouse=True)
def _test_settings(settings: LazySettings, tmp_path: Path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()  # rate-limit counts must not carry over from one test to the next
    caches["pages"].clear()
    settings.MEDIA_ROOT = tmp_path / "media"
    # Templates resolve {% static %} without a collectstatic manifest, and the
    # live server speaks plain HTTP, so cookies cannot be Secure-only here.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.ACADEMY_TRAINING_PRECISION = "fp32"


@pytest.fixture
def learner(db):
    return UserFactory(username="lee")


@pytest.fixture
def outsider(db):
    return UserFactory(username="olga")


@pytest.fixture
def instructor(db):
    from courses.services import INSTRUCTOR_GROUP, roles_sync

    roles_sync()
    user = UserFactory.create(username="irene", is_staff=True)
    user.groups.add(user.groups.model.objects.get(name=INSTRUCTOR_GROUP))
    return user


@pytest.fixture
def hr(db):
    from courses.services import HR_GROUP, roles_sync

    roles_sync()
    user = UserFactory.create(username="hana", is_staff=True)
    user.groups.add(user.groups.model.objects.get(name=HR_GROUP))
    return user


@pytest.fixture
def course(db):
    """Two stages: stage 1 has two required theory modules, an optional one and a lab."""
    course = CourseFactory(slug="demo-course", title="Demo course")
    first = StageFactory(course=course, slug="basics", title="Basics", position=1)
    second = StageFactory(course=course, slug="advanced", title="Advanced", position=2)
    ModuleFactory(course=course, stage=first, slug="intro", title="Intro", position=1)
    ModuleFactory(course=course, stage=first, slug="loss", title="Loss", position=2)
    ModuleFactory(
        course=course, stage=first, slug="extra", title="Extra", position=3, required=False
    )
    ModuleFactory(course=course, stage=second, slug="deeper", title="Deeper", position=1)
    ModuleFactory(course=course, stage=second, slug="lab", title="A lab", position=2, kind="lab")
    return course


@pytest.fixture
def checked(course):
    """'loss' (the last required module of stage 1) gets a two-question check, pass mark 100."""
    module = course.modules.get(slug="loss")
    make_check(
        module,
        [
            (
                "What does cross-entropy punish most?",
                [("Confident wrong answers", True), ("Slow training", False)],
            ),
            (
                "Which are learned?",
                [("Weights", True), ("Biases", True), ("The learning rate", False)],
            ),
        ],
    )
    return module


@pytest.fixture
def shipped_course(db):
    from labs.services.authoring import course_folder_import

    return course_folder_import(path=SHIPPED_COURSE).course


# --- Labs: a tiny random BERT, a small dataset, a lab, and a real Celery worker ---

ROOT = Path(__file__).resolve().parents[1]  # the repository root: the worker runs this checkout

TINY_SOLUTION = """
HYPERPARAMETERS = {"learning_rate": 1e-3, "epochs": 2, "batch_size": 16, "max_length": 32, "seed": 3}

def preprocess(text):
    return text.lower()
"""


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    from labs.training.tiny import make_tiny_bert

    root = tmp_path_factory.mktemp("models")
    path = Path(make_tiny_bert(root / "tiny-bert"))
    # The sandboxed engine runs as an unprivileged uid: the model must be world-readable,
    # like a model in site-packages is (pytest makes its temp folders 0700).
    for item in [root, path, *path.iterdir()]:
        item.chmod(0o755 if item.is_dir() else 0o644)
    return str(path)


def small_dataset_bytes(n_per_label: int = 40) -> tuple[bytes, bytes]:
    words = {
        "good": "great gain profit rally up",
        "bad": "loss crash fall down miss",
        "meh": "flat report meeting update agenda",
    }
    rows_train = ["text,label"]
    rows_test = ["text,label"]
    for label, vocab in words.items():
        tokens = vocab.split()
        for i in range(n_per_label):
            rows_train.append(f"{tokens[i % 5]} {tokens[(i + 2) % 5]} number {i},{label}")
        for i in range(10):
            rows_test.append(f"{tokens[(i + 1) % 5]} {tokens[(i + 3) % 5]} held {i},{label}")
    return "\n".join(rows_train).encode(), "\n".join(rows_test).encode()


@pytest.fixture
def dataset(db):
    train, heldout = small_dataset_bytes()
    ds, _ = dataset_import(
        slug="tiny-sentiment",
        title="Tiny sentiment",
        license_name="CC0 (made up for tests)",
        source_markdown="# Tiny\n\nMade up for tests.",
        parsed=parse_dataset(train=train, heldout=heldout),
    )
    return ds


@pytest.fixture
def lab(db, course, dataset, tiny_model) -> Lab:
    stage = course.stages.get(slug="basics")
    module = ModuleFactory.create(
        course=course, stage=stage, slug="tiny-lab", title="Tiny lab", kind="lab", position=9
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
        attempts_per_day=5,
        baseline=0.34,
        target=0.9,
        pass_mark=60,
    )


def _worker_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """A real `celery worker` process on the test database and the configured broker."""

    def __init__(self, jobs_dir: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.jobs_dir = jobs_dir
        self.log_path = log_path
        self.env = env or {}  # overrides, e.g. another broker or a proxied database
        self.name = ""  # a run's `worker` field starts with it while this worker owns the run
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": _worker_database_url(),
            "DJANGO_SECRET_KEY": django_settings.SECRET_KEY,
            "DJANGO_DEBUG": "0",
            "ACADEMY_JOBS_DIR": str(self.jobs_dir),
            # Stale after 8 missed heartbeats: short enough for the fault tests to recover
            # quickly, long enough that a loaded 2-core machine is not taken for a dead worker.
            "ACADEMY_HEARTBEAT_SECONDS": "1",
            "ACADEMY_STALE_RUN_SECONDS": "8",
            "ACADEMY_SWEEP_SECONDS": "2",
            # A hung database call is cut off after 3 s; a connection attempt after 2 s.
            "ACADEMY_DATABASE_CALL_SECONDS": "3",
            "ACADEMY_DATABASE_CONNECT_SECONDS": "2",
            "ACADEMY_TRAINING_THREADS": "1",
            # The disk-full fault tests leave the job disk 512 KB: they are about a disk that
            # fills during a run, past the claim check (tests/runs/test_prune_jobs.py has it).
            "ACADEMY_JOBS_MIN_FREE_MB": "0",
            "HF_HUB_OFFLINE": "1",
            **self.env,
        }
        self.name = f"test-{os.getpid()}-{time.monotonic_ns()}"
        # The log is appended to across restarts: only this start's "ready." counts.
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "academy",
                "worker",
                "-Q",
                "cpu,gpu,precheck,inference",
                "--concurrency",
                "1",
                "--beat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
                "--hostname",
                f"{self.name}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(offset)

    def _wait_ready(self, offset: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"ready." in self.log_path.read_bytes()[offset:]:
                return
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"worker exited:\n{self.log()}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


@pytest.fixture
def worker(transactional_db, tmp_path, settings) -> Iterator[Worker]:
    from academy.celery import app

    jobs = tmp_path / "jobs"
    jobs.mkdir()
    settings.ACADEMY_JOBS_DIR = jobs
    app.control.purge()  # messages left by earlier runs must not reach this worker
    w = Worker(jobs, tmp_path / "worker.log")
    w.start()
    yield w
    w.kill()  # the test is over: no need to wait for a warm shutdown


def wait_for(
    predicate,
    *,
    timeout: float,
    interval: float = 0.25,
    message: str | Callable[[], str] = "condition",
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    detail = message() if callable(message) else message
    raise AssertionError(f"timed out after {timeout}s waiting for {detail}")
