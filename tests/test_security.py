"""Deployment security: headers on every page, `check --deploy` with production settings,
and no inline script in any template."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


def script_policy(header: str) -> str:
    return next(part for part in header.split(";") if part.strip().startswith("script-src"))


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/accounts/login/", "/", "/no-such-page/"])
def test_every_response_forbids_inline_script(client, url):
    response = client.get(url)

    policy = response.headers["Content-Security-Policy"]
    assert script_policy(policy).split() == ["script-src", "'self'"]
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("template", sorted((ROOT / "templates").rglob("*.html")), ids=str)
def test_templates_hold_no_inline_script_or_event_handler(template: Path):
    text = template.read_text(encoding="utf-8")
    assert not INLINE_SCRIPT.search(text), "move the script into static/js/"
    assert not EVENT_HANDLER.search(text), "bind the handler from a static script"


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "academy.example.com",
        "ACADEMY_VAR_DIR": str(tmp_path),
    }
    # Production as the README sets it up: none of the switches a developer or the tests use.
    for name in (
        "DJANGO_DEBUG",
        "DJANGO_SECURE_COOKIES",
        "DJANGO_SECURE_SSL_REDIRECT",
        "DJANGO_HSTS_SECONDS",
        "DJANGO_ALLOW_ASYNC_UNSAFE",
    ):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout
