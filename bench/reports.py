"""HR reports benchmark: the /reports/ page and the CSV/JSON exports as the data grows.

Not a test. Run:

    .venv/bin/python bench/reports.py                          # SQLite, 1k and 10k employees
    .venv/bin/python bench/reports.py --sizes 1000,10000,100000
    .venv/bin/python bench/reports.py --postgres postgres://postgres@127.0.0.1:5432/bench_hr

Each size generates, in a database of its own (a temporary SQLite file, or the given
PostgreSQL database, flushed first; never the test database): that many employees in 50
departments with managers, 3 courses of 12 modules (10 required, 3 labs), every employee
enrolled in every course (3 enrollments per employee) with due dates around today, and
random progress (completed modules, lab best scores, some courses complete). It then
times the full report page (HTML, as HR), the CSV export of every row (streamed to the
end) and the JSON export, and counts their queries. Target: 30,000 CSV rows in < 2 s.
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def configure(postgres: str | None) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "academy.settings"
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,localhost"
    os.environ["ACADEMY_DEMO_ACCOUNTS"] = "0"
    os.environ["DJANGO_STATIC_ROOT"] = str(ROOT / "static")  # silences whitenoise's warning
    if postgres:
        if postgres.rstrip("/").rsplit("/", 1)[-1] in {"test", "test_academy", "academy"}:
            sys.exit("Refusing to use a shared database: give the bench one of its own (bench_hr).")
        os.environ["DATABASE_URL"] = postgres
        os.environ["DJANGO_SECRET_KEY"] = "bench-only"  # noqa: S105 - a throwaway bench database
        os.environ["DJANGO_DEBUG"] = "0"
    else:
        os.environ.pop("DATABASE_URL", None)
        var = tempfile.mkdtemp(prefix="bench-reports-")
        os.environ["ACADEMY_VAR_DIR"] = var
        atexit.register(shutil.rmtree, var, ignore_errors=True)  # 100k employees is ~300 MB
        os.environ["DJANGO_DEBUG"] = "0"
    import django

    django.setup()
    from django.conf import settings

    # The page renders {% static %} without a collectstatic manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def generate(n_employees: int, seed: int = 7) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from courses.models import Course, Department, EmployeeProfile, Enrollment, Module, Stage
    from courses.services import HR_GROUP, roles_sync
    from grading.models import ModuleProgress

    rng = random.Random(seed)
    User = get_user_model()
    roles_sync()
    hr = User.objects.create_user(username="bench-hr", password=None)
    hr.groups.add(Group.objects.get(name=HR_GROUP))
    departments = Department.objects.bulk_create(
        [Department(name=f"Department {i:02d}", slug=f"department-{i:02d}") for i in range(50)]
    )
    courses = []
    modules: dict[int, list[Module]] = {}
    for c in range(3):
        course = Course.objects.create(slug=f"course-{c}", title=f"Course {c}", is_published=True)
        courses.append(course)
        modules[course.pk] = []
        for s in range(3):
            stage = Stage.objects.create(
                course=course, slug=f"stage-{s}", title=f"Stage {s}", position=s
            )
            for m in range(4):
                index = s * 4 + m
                kind = "lab" if m == 3 else "theory"
                modules[course.pk].append(
                    Module.objects.create(
                        course=course,
                        stage=stage,
                        slug=f"m{index}",
                        title=f"Module {index}",
                        kind=kind,
                        required=index not in (1, 5),
                        position=m,
                    )
                )
    batch = 5000
    unusable = make_password(None)
    users = [
        User(
            username=f"emp{i:06d}",
            first_name=f"First{i % 997}",
            last_name=f"Last{i % 1013}",
            email=f"emp{i}@example.com",
            password=unusable,
        )
        for i in range(n_employees)
    ]
    User.objects.bulk_create(users, batch_size=batch)
    ids = list(
        User.objects.filter(username__startswith="emp").order_by("pk").values_list("pk", flat=True)
    )
    profiles = []
    for i, pk in enumerate(ids):
        manager = ids[i - i % 20] if i % 20 else None  # groups of 20 share a manager
        profiles.append(
            EmployeeProfile(
                user_id=pk,
                employee_id=f"E{i:06d}",
                department=departments[(i // 20) % 50],
                manager_id=manager,
            )
        )
    EmployeeProfile.objects.bulk_create(profiles, batch_size=batch)
    today = timezone.localdate()
    now = timezone.now()
    # Generated assignment dates must survive bulk_create (auto_now_add would set "now").
    Enrollment._meta.get_field("enrolled_at").auto_now_add = False
    enrollments, progress = [], []
    for pk in ids:
        for course in courses:
            required = [m for m in modules[course.pk] if m.required]
            done = rng.choice([0, 0, 1, 3, 5, 8, 10, 10, 10])
            started = now - datetime.timedelta(days=rng.randint(5, 120))
            completed_at = (
                started + datetime.timedelta(days=rng.randint(1, 40))
                if done == len(required)
                else None
            )
            enrollments.append(
                Enrollment(
                    learner_id=pk,
                    course=course,
                    enrolled_at=started,
                    due_date=today + datetime.timedelta(days=rng.randint(-30, 60)),
                    completed_at=min(completed_at, now) if completed_at else None,
                )
            )
            for module in required[:done]:
                progress.append(
                    ModuleProgress(
                        learner_id=pk,
                        module=module,
                        status="completed",
                        completed_at=started + datetime.timedelta(days=1),
                        best_score=rng.uniform(55, 99) if module.kind == "lab" else None,
                    )
                )
        if len(progress) > 50_000:
            Enrollment.objects.bulk_create(enrollments, batch_size=batch)
            ModuleProgress.objects.bulk_create(progress, batch_size=batch)
            enrollments, progress = [], []
    Enrollment.objects.bulk_create(enrollments, batch_size=batch)
    ModuleProgress.objects.bulk_create(progress, batch_size=batch)


def timed(fn, runs: int) -> tuple[float, int, int]:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    times, queries, size = [], 0, 0
    for _ in range(runs):
        reset_queries()
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            size = fn()
            times.append(time.perf_counter() - start)
        queries = len(captured)
    return statistics.median(times), queries, size


def measure(n: int, runs: int) -> dict[str, object]:
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from courses.models import Enrollment

    call_command("flush", interactive=False, verbosity=0)
    start = time.perf_counter()
    generate(n)
    generated = time.perf_counter() - start
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh planner statistics on both databases
    client = Client()
    from django.contrib.auth import get_user_model
    from django.http import StreamingHttpResponse

    client.force_login(get_user_model().objects.get(username="bench-hr"))

    def page() -> int:
        response = client.get("/reports/")
        assert response.status_code == 200, response.content[:500]
        return len(response.content)

    def export(url: str):
        def run() -> int:
            response = client.get(url)
            assert response.status_code == 200 and isinstance(response, StreamingHttpResponse)
            rows = 0
            for chunk in response.streaming_content:
                rows += chunk.count(b"\r\n") if url.endswith(".csv") else chunk.count(b"\n{")
            return rows - (1 if url.endswith(".csv") else 0)

        return run

    page_s, page_q, _ = timed(page, runs)
    filtered_s, _, _ = timed(
        lambda: len(
            client.get("/reports/?department=department-07&status=overdue&sort=-progress").content
        ),
        runs,
    )
    csv_s, csv_q, csv_rows = timed(export("/reports/export.csv"), runs)
    json_s, json_q, json_rows = timed(export("/reports/export.json"), max(1, runs - 1))
    assert csv_rows == json_rows == Enrollment.objects.count(), (csv_rows, json_rows)
    return {
        "employees": n,
        "rows": csv_rows,
        "generate_s": generated,
        "page_s": page_s,
        "page_q": page_q,
        "filtered_s": filtered_s,
        "csv_s": csv_s,
        "csv_q": csv_q,
        "json_s": json_s,
        "json_q": json_q,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="employees per step, comma-separated")
    parser.add_argument("--postgres", help="postgres://… URL of a database for the bench alone")
    parser.add_argument("--runs", type=int, default=3, help="median of this many timings")
    args = parser.parse_args()
    configure(args.postgres)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    print(f"database: {connection.vendor}, {os.cpu_count()} CPUs")
    print(
        "| employees | rows | report page (s) | filtered page (s) | page queries | CSV (s) | CSV queries | JSON (s) | generate (s) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in [int(s) for s in args.sizes.split(",")]:
        r = measure(size, args.runs)
        print(
            f"| {r['employees']:,} | {r['rows']:,} | {r['page_s']:.2f} | {r['filtered_s']:.2f} | {r['page_q']} "
            f"| {r['csv_s']:.2f} | {r['csv_q']} | {r['json_s']:.2f} | {r['generate_s']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
