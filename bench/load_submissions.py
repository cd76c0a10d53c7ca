"""Load test: N submissions from L learners queued at once against 2 real workers (tiny model).

    .venv/bin/python bench/load_submissions.py [--submissions 200] [--learners 50] [--workers 2]

Everything lives in a temporary folder (its own SQLite database, filesystem broker and job
folders), so it touches nothing else. Learners queue one after the other, all their runs
at once: the arrival order in which first-in-first-out starves the last learners. Meanwhile
this process polls the status partial (`labs:run-status`, as htmx does) through Django's
test client. Prints: wall time, queue wait p50/p95/p99, fairness (when each learner's first
run started), lost/duplicated grades and the status partial's latency.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_CODE = """
HYPERPARAMETERS = {"learning_rate": 1e-3, "epochs": 1, "batch_size": 16, "max_length": 24, "seed": 3}

def preprocess(text):
    return text.lower()
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--learners", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1500)
    args = parser.parse_args()
    labs_needed = -(-args.submissions // args.learners)  # one active run per learner and lab

    folder = Path(tempfile.mkdtemp(prefix="academy-load-"))
    env = {
        "ACADEMY_VAR_DIR": str(folder),
        "ACADEMY_JOBS_DIR": str(folder / "jobs"),
        "ACADEMY_HEARTBEAT_SECONDS": "2",
        "ACADEMY_STALE_RUN_SECONDS": "30",
        "ACADEMY_SWEEP_SECONDS": "10",
        "ACADEMY_TRAINING_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "DJANGO_SETTINGS_MODULE": "academy.settings",
    }
    os.environ.update(env)
    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    call_command("migrate", verbosity=0)
    from courses.models import Module
    from grading.models import Grade
    from labs.datasets import parse_dataset
    from labs.models import Lab, Submission
    from labs.services.datasets import dataset_import
    from labs.services.submissions import submission_create
    from labs.training.tiny import make_tiny_bert
    from tests.conftest import small_dataset_bytes
    from tests.factories import CourseFactory, ModuleFactory, StageFactory, UserFactory

    model = Path(make_tiny_bert(folder / "tiny-bert"))
    for item in [folder, model, *model.iterdir()]:
        item.chmod(0o755 if item.is_dir() else 0o644)
    train, heldout = small_dataset_bytes(30)
    dataset, _ = dataset_import(
        slug="load",
        title="Load",
        license_name="CC0",
        source_markdown="# Load",
        parsed=parse_dataset(train=train, heldout=heldout),
    )
    course = CourseFactory(slug="load")
    stage = StageFactory(course=course, slug="s", position=1)
    labs = [
        Lab.objects.create(
            module=ModuleFactory.create(
                course=course, stage=stage, slug=f"lab{n}", kind=Module.Kind.LAB
            ),
            dataset=dataset,
            base_model=str(model),
            starter_code="x = 1\n",
            reference_solution=RUN_CODE,
            wall_time_seconds=300,
            memory_mb=3072,
            max_epochs=1,
            attempts_per_day=50,
            baseline=0.3,
            target=0.9,
        )
        for n in range(labs_needed)
    ]
    learners = [UserFactory.create(username=f"learner{n:02d}") for n in range(args.learners)]

    workers = []
    for n in range(args.workers):
        log = (folder / f"worker{n}.log").open("wb")
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "academy",
                    "worker",
                    "-Q",
                    "cpu",
                    "--concurrency",
                    "1",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",
                    "--hostname",
                    f"load{n}@%h",
                    *(["--beat"] if n == 0 else []),
                ],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        logs = [(folder / f"worker{n}.log").read_bytes() for n in range(args.workers)]
        if all(b"ready." in text for text in logs):
            break
        time.sleep(0.3)

    # Queue: learner after learner, each one's runs at once.
    submissions: list[Submission] = []
    began = time.monotonic()
    for learner in learners:
        for lab in labs:
            if len(submissions) < args.submissions:
                submissions.append(submission_create(learner=learner, lab=lab, code=RUN_CODE))
    queued_in = time.monotonic() - began

    client = Client(HTTP_HOST="localhost")
    latencies: list[float] = []
    polled = 0
    try:
        while time.monotonic() - began < args.timeout:
            open_runs = Submission.objects.filter(status__in=Submission.ACTIVE).count()
            if not open_runs:
                break
            # The learner of a still-active run polls its status partial, as htmx would.
            target = submissions[polled % len(submissions)]
            polled += 1
            client.force_login(target.learner)
            url = reverse("labs:run-status", args=[target.pk])
            t0 = time.perf_counter()
            response = client.get(url, HTTP_HX_REQUEST="true")
            latencies.append((time.perf_counter() - t0) * 1000)
            assert response.status_code in (200, 286), response.status_code
            time.sleep(0.2)
        wall = time.monotonic() - began
    finally:
        for proc in workers:  # the whole group: the pool children and any sandbox too
            os.killpg(proc.pid, signal.SIGKILL)

    runs = list(Submission.objects.order_by("started_at"))
    waits = [(r.started_at - r.created_at).total_seconds() for r in runs if r.started_at]
    grades = {r.pk: Grade.objects.filter(submission=r).count() for r in runs}
    lost = sum(1 for r in runs if grades[r.pk] == 0)
    duplicated = sum(max(0, n - 1) for n in grades.values())
    claim_rank: dict[str, int] = {}
    first_wait: dict[str, float] = {}
    for rank, run in enumerate(runs, 1):
        name = run.learner.username
        if name not in claim_rank and run.started_at:
            claim_rank[name] = rank
            first_wait[name] = (run.started_at - run.created_at).total_seconds()
    statuses = sorted({r.status for r in runs})
    run_seconds = [
        (r.finished_at - r.started_at).total_seconds()
        for r in runs
        if r.finished_at and r.started_at
    ]

    print(
        f"\n{args.submissions} submissions from {args.learners} learners, {args.workers} workers, tiny model"
    )
    print(
        f"(queued in {queued_in:.1f} s; run time per submission median {statistics.median(run_seconds):.1f} s)"
    )
    rows = [
        ("submissions", f"{len(runs)}  (statuses: {', '.join(statuses)})"),
        ("workers", str(args.workers)),
        ("wall time (s)", f"{wall:.0f}"),
        ("throughput (runs/min)", f"{60 * len(runs) / wall:.1f}"),
        (
            "queue wait p50 / p95 / p99 (s)",
            f"{percentile(waits, 0.5):.0f} / {percentile(waits, 0.95):.0f} / {percentile(waits, 0.99):.0f}",
        ),
        ("lost / duplicated grades", f"{lost} / {duplicated}"),
        (
            "every learner's first run claimed among the first",
            f"{max(claim_rank.values())} claims (of {len(runs)}; {args.learners} learners)",
        ),
        (
            "first-run wait: median / max over learners (s)",
            f"{statistics.median(first_wait.values()):.0f} / {max(first_wait.values()):.0f}",
        ),
        (
            "status partial p50 / p99 / max (ms)",
            f"{percentile(latencies, 0.5):.1f} / {percentile(latencies, 0.99):.1f} / {max(latencies):.1f} ({len(latencies)} polls)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"| {'measure':<{width}} | value |\n| {'-' * width} | --- |")
    for key, value in rows:
        print(f"| {key:<{width}} | {value} |")
    print(f"(data in {folder})")
    return 0 if not lost and not duplicated else 1


if __name__ == "__main__":
    sys.exit(main())
