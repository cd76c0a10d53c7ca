"""Precheck benchmark: how long a learner waits for a precheck of the first lab's starter.

Not a test. Run: `.venv/bin/python bench/precheck.py [--repeat 3]`.
A scratch SQLite database gets the shipped course; then the worker's own function
(`runs.precheck.precheck_run`: folder, strict sandbox where available, the engine's
precheck mode, report read back) runs on the first lab's starter, as a worker on the
`precheck` queue would. The first run builds the worker's tiny model (once per worker
and base model); later runs find it. Prints wall times; target: under 15 s on an idle
2-core machine. On a shared box the wall times carry everyone's load; the CPU columns
(the engine's one thread, the worker's own work) add up to what the wall time would be idle.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "courses/content/fine-tuning-at-work"
STARTER = COURSE / "foundations/labs/first-fine-tune/starter.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="warm prechecks after the first")
    parser.add_argument("--threads", default="1", help="ACADEMY_TRAINING_THREADS")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="academy-precheck-"))
    folder.chmod(0o755)
    os.environ.update(
        {
            "ACADEMY_VAR_DIR": str(folder),
            "ACADEMY_JOBS_DIR": str(folder / "jobs"),
            "ACADEMY_TRAINING_THREADS": args.threads,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "DJANGO_SETTINGS_MODULE": "academy.settings",
        }
    )
    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from labs.models import Lab, Precheck
    from labs.services.authoring import course_folder_import
    from runs.precheck import precheck_run

    call_command("migrate", verbosity=0)
    course_folder_import(path=COURSE)
    lab = Lab.objects.get(module__slug="lab-first-fine-tune")
    learner = User.objects.create_user("bench")
    code = STARTER.read_text()
    print(
        f"sandbox mode: {settings.ACADEMY_SANDBOX_MODE}; threads: {args.threads}; "
        f"lab: {lab.module.slug} ({lab.train_subset_size} training rows)"
    )
    rows = []
    try:
        for attempt in range(1 + args.repeat):
            precheck = Precheck.objects.create(learner=learner, lab=lab, code=code)
            started, cpu_before = time.perf_counter(), _cpu_seconds()
            status = precheck_run(precheck_id=precheck.pk)
            wall = time.perf_counter() - started
            cpu = _cpu_seconds() - cpu_before
            precheck.refresh_from_db()
            inside = precheck.report.get("seconds")
            engine_cpu = precheck.report.get("cpu_seconds")
            rows.append((attempt, status, wall, inside, cpu, engine_cpu))
            if status != "done":
                print(f"precheck {precheck.pk} ended {status}: {precheck.error_message}")
                return 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(
        "\n| precheck | status | wall (s) | engine's checks (s) | engine CPU, imports "
        "included (s) | worker CPU outside the sandbox (s) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for attempt, status, wall, inside, cpu, engine_cpu in rows:
        name = "first (builds the tiny model)" if attempt == 0 else f"warm #{attempt}"
        print(f"| {name} | {status} | {wall:.1f} | {inside} | {engine_cpu} | {cpu:.1f} |")
    if len(rows) > 1:
        print(f"\nwarm median: {statistics.median(r[2] for r in rows[1:]):.1f} s")
    return 0


def _cpu_seconds() -> float:
    """CPU time of this process: the worker's own share (the folder, the tiny model's build,
    reading the report). The sandboxed engine's is in its report (`cpu_seconds`)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


if __name__ == "__main__":
    sys.exit(main())
