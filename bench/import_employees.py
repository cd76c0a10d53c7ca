"""Employee directory import benchmark: a 50,000-row file, imported, then imported again.

Not a test. Run:

    .venv/bin/python bench/import_employees.py                       # SQLite, a temp file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/import_employees.py

With DATABASE_URL set, the bench creates a scratch database of its own on that server
(`<name>_bench_import`), migrates it and drops it at the end: the named database is never
touched. It generates N people in 60 departments with a manager hierarchy (a chief, heads of
department, team leads, members; 2 % marked inactive), three department assignments of one
course, and times, with peak memory:

1. the first import (everyone created, departments created, enrollments for assigned ones);
2. the same file again (must report 0 changes);
3. a file where 5 % moved department or were renamed and 1 % left (updates, deactivations).

Peak memory is the process's VmHWM during the step (whole process, Django included; reset
before each step) and, with --tracemalloc, Python's own peak (slower: times are then inflated). Target: 50,000 rows in under a minute.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import csv
import io
import os
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def configure() -> str:
    """Point Django at a scratch database; return a description of it."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "academy.settings"
    os.environ["ACADEMY_DEMO_ACCOUNTS"] = "0"
    os.environ["DJANGO_DEBUG"] = "0"
    url = os.environ.get("DATABASE_URL")
    if url:
        import dj_database_url
        import psycopg

        name = dj_database_url.parse(url)["NAME"]
        scratch = f"{name}_bench_import"
        admin = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
            conn.execute(f'CREATE DATABASE "{scratch}"')

        def drop() -> None:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{scratch}"')

        atexit.register(drop)
        os.environ["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + scratch
        os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
        where = f"PostgreSQL (scratch database {scratch})"
    else:
        var = tempfile.mkdtemp(prefix="bench-import-")
        os.environ["ACADEMY_VAR_DIR"] = var
        atexit.register(shutil.rmtree, var, ignore_errors=True)
        where = "SQLite (a temporary file)"
    import django

    django.setup()
    return where


def directory_csv(n: int, *, seed: int, churn: bool = False) -> bytes:
    """N people: a chief, 60 heads of department, a team lead per 12 people, members."""
    rng = random.Random(seed)
    churn_rng = random.Random(seed + 1)  # its own stream: the base file is the same either way
    departments = [f"Department {i:02d}" for i in range(60)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["employee_id", "name", "email", "department", "manager_employee_id", "active"])
    lead_of: dict[int, str] = {}
    for i in range(n):
        eid = f"E{i:06d}"
        department = departments[i % 60] if i else "Executive"
        if i == 0:
            manager = ""
        elif i <= 60:
            manager = "E000000"  # heads of department report to the chief
        elif (i // 60) % 12 == 1:
            manager = f"E{i % 60 or 60:06d}"  # team leads report to their head
            lead_of[i % 60] = eid
        else:
            manager = lead_of.get(i % 60, f"E{i % 60 or 60:06d}")
        name = f"First{i % 997} Last{i % 1013}"
        active = "false" if rng.random() < 0.02 and i > 60 else "true"
        if churn and i > 60:
            r = churn_rng.random()
            if r < 0.03:
                department = departments[(i + 7) % 60]
            elif r < 0.05:
                name = f"First{i % 997} Renamed{i % 89}"
            elif r < 0.06:
                active = "false"
        writer.writerow([eid, name, f"person{i}@example.com", department, manager, active])
    return out.getvalue().encode()


def vm_hwm_mb() -> float:
    """The process's peak resident memory (since the last reset) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM to the current RSS, so each step has its own.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def measured(step: Callable[[], Any], *, trace: bool) -> tuple[Any, float, float, float | None]:
    """The step's result, its wall seconds, its peak RSS and (traced) Python's own peak."""
    import gc

    gc.collect()
    reset_peak()
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    result = step()
    wall = time.perf_counter() - start
    peak = None
    if trace:
        peak = tracemalloc.get_traced_memory()[1] / 1024 / 1024
        tracemalloc.stop()
    return result, wall, vm_hwm_mb(), peak


def main() -> None:
    parser = argparse.ArgumentParser(description="Employee directory import benchmark")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also trace Python's peak (slows every step)"
    )
    args = parser.parse_args()
    where = configure()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from courses.models import Course, Department, Enrollment
    from grading.reports.directory import directory_apply
    from grading.reports.services import assignment_create

    call_command("migrate", verbosity=0, interactive=False)
    course = Course.objects.create(slug="onboarding", title="Onboarding", is_published=True)
    for i in (3, 17, 42):  # assigned before these people exist: the import enrolls them
        department = Department.objects.create(
            name=f"Department {i:02d}", slug=f"department-{i:02d}"
        )
        assignment_create(course=course, due_date=None, actor=None, departments=[department])
    first = directory_csv(args.rows, seed=7)
    churned = directory_csv(args.rows, seed=7, churn=True)
    print(
        f"database: {where}; {os.cpu_count()} CPUs; file {len(first) / 1e6:.1f} MB, {args.rows:,} rows"
    )
    print(
        "| run | rows | wall (s) | created | updated | deactivated | departments created | enrolled | VmHWM (MB) | tracemalloc peak (MB) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, data in (
        ("first import", first),
        ("same file again", first),
        ("5 % moved/renamed, 1 % left", churned),
    ):
        plan, wall, hwm, peak = measured(partial(directory_apply, data), trace=args.tracemalloc)
        print(
            f"| {label} | {args.rows:,} | {wall:.1f} | {len(plan.created):,} | "
            f"{len(plan.updated) - len(plan.deactivated):,} | {len(plan.deactivated):,} | "
            f"{len(plan.departments_created)} | {plan.enrolled:,} | {hwm:.0f} | "
            f"{'—' if peak is None else f'{peak:.0f}'} |",
            flush=True,
        )
        if label == "same file again":
            assert plan.changes == 0, plan.summary()
            print(f"<!-- second run: {plan.summary()} -->")
    print(f"users {User.objects.count():,}, enrollments {Enrollment.objects.count():,}")


if __name__ == "__main__":
    main()
