"""Web-tier benchmark: pages served by the production WSGI server, beside a static file.

Not a test. Run: `.venv/bin/python bench/web.py [--seconds 5 --rounds 3 --connections 8]`
(needs `wrk`: `apt-get install wrk`, or `make bench-web`; and Redis for the shared cache,
or `--cache-url none`).

It builds a scratch SQLite database with the shipped course and one enrolled learner
half-way through it, collects static files, starts gunicorn with production settings
(DEBUG off, whitenoise serving compressed, hashed static files, sessions in the shared
cache) on 127.0.0.1, and points wrk, in interleaved rounds, at: a whitenoise static file,
the sign-in page, the course page and a lesson page as that signed-in learner (whose
browser holds a CSRF cookie, so both come from the page cache, web/pagecache.py),
and the lesson page rendered (a browser on its first page, without that cookie). Prints
requests/s, p50/p99 latency, each page's rate as a fraction of the static file's, and
each page's query count (pinned by tests).
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
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
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


def prepare(env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Migrate, import the course, make a learner with progress; return (the learner's
    cookies, each page's query count uncached/cached). Runs in a child so this process
    stays free of Django."""
    script = f"""
import django
django.setup()
from django.contrib.auth import get_user_model
from importlib import import_module
from django.conf import settings
from django.core.cache import cache
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
session = import_module(settings.SESSION_ENGINE).SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = settings.AUTHENTICATION_BACKENDS[0]
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
client = Client(HTTP_HOST="127.0.0.1")
client.cookies["sessionid"] = session.session_key
client.get("/accounts/login/")  # a browser holds a CSRF cookie from its first page
for name, url in (("course", "/courses/{COURSE}/"), ("lesson", "/courses/{COURSE}/{LESSON}/")):
    client.get(url)  # the first visit starts the module
    cache.clear()
    counts = []
    for _ in ("miss", "hit"):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200, url
        counts.append(str(len(queries)))
    print("QUERIES", name, "/".join(counts))
print("SESSION", session.session_key)
print("CSRF", client.cookies["csrftoken"].value)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(f"preparing the database failed:\n{done.stderr[-3000:]}")
    session = _search(r"^SESSION (\S+)$", done.stdout, re.M).group(1)
    csrf = _search(r"^CSRF (\S+)$", done.stdout, re.M).group(1)
    queries = dict(re.findall(r"^QUERIES (\S+) (\S+)$", done.stdout, re.M))
    return f"sessionid={session}; csrftoken={csrf}", queries


def _search(pattern: str, text: str, flags: int = 0) -> re.Match[str]:
    match = re.search(pattern, text, flags)
    if match is None:
        raise ValueError(f"no {pattern!r} in the output: {text[:300]!r}")
    return match


def _fullmatch(pattern: str, text: str) -> re.Match[str]:
    match = re.fullmatch(pattern, text)
    if match is None:
        raise ValueError(f"{text!r} is not {pattern!r}")
    return match


def static_url(static_root: Path) -> str:
    manifest = (static_root / "staticfiles.json").read_text()
    hashed = _search(r'"css/academy\.css": "([^"]+)"', manifest).group(1)
    return f"/static/{hashed}"


def parse_wrk(output: str) -> tuple[float, float, float]:
    def ms(value: str) -> float:
        number, unit = _fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rate = float(_search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = ms(_search(r"^\s+50%\s+(\S+)", output, re.M).group(1))
    p99 = ms(_search(r"^\s+99%\s+(\S+)", output, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        sys.exit(f"wrk saw {errors.group(1)} failed responses:\n{output}")
    return rate, p50, p99


def wrk(
    base: str, path: str, cookie: str, *, connections: int, seconds: int
) -> tuple[float, float, float]:
    command = [
        "wrk",
        "--latency",
        "-t2",
        f"-c{connections}",
        f"-d{seconds}s",
        "-H",
        f"Cookie: {cookie}",
        f"{base}{path}",
    ]
    return parse_wrk(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5, help="per target and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--cache-url",
        default="redis://127.0.0.1:6379/13",
        help="the shared cache production runs with (sessions, cached pages); 'none' for "
        "each process's own memory and sessions in the database",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk (or `make bench-web`).")
    if args.cache_url != "none":
        address = urllib.parse.urlsplit(args.cache_url)
        try:
            socket.create_connection((address.hostname, address.port or 6379), timeout=2).close()
        except OSError as exc:
            sys.exit(f"no Redis at {args.cache_url} ({exc}): start one, or pass --cache-url none")

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
        "ACADEMY_CACHE_URL": "" if args.cache_url == "none" else args.cache_url,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    server = None
    try:
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        cookies, queries = prepare(env)
        server = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "academy.wsgi",
                "--workers",
                str(args.workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
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
        session_only = cookies.split(";")[0]
        targets = [
            ("static file (whitenoise)", static_url(tmp / "static"), None, cookies),
            # The framework's floor: a form page with no course data behind it.
            ("sign-in page", "/accounts/login/", None, cookies),
            ("course page", f"/courses/{COURSE}/", "course", cookies),
            ("lesson page", f"/courses/{COURSE}/{LESSON}/", "lesson", cookies),
            # A browser without a CSRF cookie yet (its first page) is never served from
            # the cache: this row is the page's cost when rendered.
            ("lesson page, rendered", f"/courses/{COURSE}/{LESSON}/", "lesson", session_only),
        ]
        served = {}
        for label, path, _page, cookie in targets:
            wrk(base, path, cookie, connections=args.connections, seconds=2)  # warm-up
            request = urllib.request.Request(f"{base}{path}", headers={"Cookie": cookie})  # noqa: S310
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (our http URL)
                served[label] = response.headers.get("X-Academy-Page-Cache", "—")
        # Rounds interleave the targets, so a change in the machine's load falls on all of
        # them alike; each target's median round is reported.
        rounds: dict[str, list[tuple[float, float, float]]] = {t[0]: [] for t in targets}
        for _ in range(args.rounds):
            for label, path, _page, cookie in targets:
                rounds[label].append(
                    wrk(base, path, cookie, connections=args.connections, seconds=args.seconds)
                )
        results = []
        for label, _path, page, _cookie in targets:
            rate, p50, p99 = (statistics.median(m[i] for m in rounds[label]) for i in range(3))
            results.append((label, page, served[label], rate, p50, p99))
    finally:
        if server and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)

    static_rate = results[0][3]
    cache = "no shared cache" if args.cache_url == "none" else f"cache {args.cache_url}"
    print(
        f"\nWeb tier: gunicorn {args.workers} sync workers, wrk 2 threads x {args.connections} "
        f"connections, median of {args.rounds} interleaved rounds of {args.seconds} s, "
        f"SQLite, {cache}, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| target | page cache | requests/s | p50 (ms) | p99 (ms) | vs static | queries |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, page, served, rate, p50, p99 in results:
        count = "—"
        if page:  # uncached/cached, measured with Django's test client in prepare()
            count = queries[page].split("/")[0 if served == "—" else 1]
        print(
            f"| {label} | {served} | {rate:.0f} | {p50:.1f} | {p99:.1f} | "
            f"{rate / static_rate:.2f}x | {count} |"
        )
    print("\nGoal: lesson page >= 0.40x the static file's rate, p99 < 25 ms.")


if __name__ == "__main__":
    main()
