"""Web-tier benchmark: pages served by the production WSGI server, beside a static file.

Not a test. Run: `.venv/bin/python bench/web.py [--seconds 10 --connections 16 --workers 2]`
(needs `wrk`: `apt-get install wrk`, or `make bench-web`).

It builds a scratch SQLite database with the shipped course and one enrolled learner
half-way through it, collects static files, starts gunicorn with production settings
(DEBUG off, whitenoise serving compressed, hashed static files) on 127.0.0.1, and
points wrk at, in turn: a whitenoise static file, the course page and a lesson page,
as that signed-in learner. Prints requests/s, p50/p99 latency, each page's rate as a
fraction of the static file's, and each page's query count (pinned by tests).
Goal on 2 cores: lesson page >= 0.4x the static file's rate, p99 < 25 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COURSE = "fine-tuning-at-work"
LESSON = "tokenisation"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(env: dict[str, str]) -> tuple[str, dict[str, int]]:
    """Migrate, import the course, make a learner with progress; return (session cookie,
    query count per page). Runs in a child so this process stays free of Django."""
    script = f"""
import django
django.setup()
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from courses.models import Course, Enrollment
from grading.services import module_mark_complete

call_command("migrate", verbosity=0)
call_command("import_course", "courses/content/{COURSE}", verbosity=0)
user = get_user_model().objects.create_user("bench-learner", password="x")
course = Course.objects.get(slug="{COURSE}")
Enrollment.objects.create(learner=user, course=course)
for module in course.modules.filter(stage__position=0, kind="theory").order_by("position")[:2]:
    try:
        module_mark_complete(learner=user, module=module)
    except Exception:  # a module with a knowledge check completes only by passing it
        pass
session = SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
client = Client(HTTP_HOST="127.0.0.1")
client.cookies["sessionid"] = session.session_key
for name, url in (("course", "/courses/{COURSE}/"), ("lesson", "/courses/{COURSE}/{LESSON}/")):
    client.get(url)  # warm
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, secure=True).status_code == 200, url
    print("QUERIES", name, len(queries))
print("SESSION", session.session_key)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(f"preparing the database failed:\n{done.stderr[-3000:]}")
    session = re.search(r"^SESSION (\S+)$", done.stdout, re.M).group(1)
    queries = {m[0]: int(m[1]) for m in re.findall(r"^QUERIES (\S+) (\d+)$", done.stdout, re.M)}
    return session, queries


def static_url(static_root: Path) -> str:
    manifest = (static_root / "staticfiles.json").read_text()
    hashed = re.search(r'"css/academy\.css": "([^"]+)"', manifest).group(1)
    return f"/static/{hashed}"


def parse_wrk(output: str) -> tuple[float, float, float]:
    def ms(value: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        sys.exit(f"wrk saw {errors.group(1)} failed responses:\n{output}")
    return rate, p50, p99


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk (or `make bench-web`).")

    tmp = Path(tempfile.mkdtemp(prefix="academy-web-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "academy.settings",
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_STATIC_ROOT": str(tmp / "static"),
        # TLS would be the proxy's job in front of gunicorn; wrk speaks plain HTTP here.
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_SECURE_COOKIES": "0",
        "ACADEMY_VAR_DIR": str(tmp),
        "ACADEMY_LOG_LEVEL": "WARNING",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    server = None
    try:
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
            cwd=ROOT, env=env, check=True,
        )  # fmt: skip
        session, queries = prepare(env)
        server = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "academy.wsgi", "--workers", str(args.workers),
             "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
            cwd=ROOT, env=env, start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/accounts/login/", timeout=2)  # noqa: S310 (our http URL)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("gunicorn did not start")
                time.sleep(0.2)
        targets = [
            ("static file (whitenoise)", static_url(tmp / "static"), None),
            # The framework's floor: a form page with no course data behind it.
            ("sign-in page", "/accounts/login/", None),
            ("course page", f"/courses/{COURSE}/", "course"),
            ("lesson page", f"/courses/{COURSE}/{LESSON}/", "lesson"),
        ]
        results = []
        for label, path, page in targets:
            command = ["wrk", "--latency", "-t2", f"-c{args.connections}", f"-d{args.seconds}s",
                       "-H", f"Cookie: sessionid={session}", f"{base}{path}"]  # fmt: skip
            subprocess.run([*command[:4], "-d2s", *command[5:]], capture_output=True)  # warm-up
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            results.append((label, path, page, *parse_wrk(output)))
    finally:
        if server and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)

    static_rate = results[0][3]
    print(
        f"\nWeb tier: gunicorn {args.workers} sync workers, wrk 2 threads x {args.connections} "
        f"connections x {args.seconds} s, SQLite, load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| target | requests/s | p50 (ms) | p99 (ms) | vs static | queries |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, _path, page, rate, p50, p99 in results:
        count = str(queries[page]) if page else "—"
        print(
            f"| {label} | {rate:.0f} | {p50:.1f} | {p99:.1f} | {rate / static_rate:.2f}x | {count} |"
        )
    print("\nGoal: lesson page >= 0.40x the static file's rate, p99 < 25 ms.")


if __name__ == "__main__":
    main()
