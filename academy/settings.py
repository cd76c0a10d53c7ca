"""LLM Academy settings.

This is the only module that reads the environment. Every variable is listed in
`.env.example`. Two shapes of deployment come out of the same file:

* **embedded** (no `DATABASE_URL`): SQLite and a server-free Celery broker under
  `var/`, DEBUG on, a secret generated once into `var/`. What `make run` starts.
* **production** (`DATABASE_URL` set): PostgreSQL and Redis/RabbitMQ from the
  environment, DEBUG off, and no secret without `DJANGO_SECRET_KEY`.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Any, overload
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from sandbox.policy import DEFAULT_UID_RANGE

BASE_DIR = Path(__file__).resolve().parent.parent


@overload
def env_str(name: str) -> str | None: ...
@overload
def env_str(name: str, default: str) -> str: ...
def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name)
    if value is None:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}.")


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = env_str(name)
    return default if value is None else [item.strip() for item in value.split(",") if item.strip()]


VAR_DIR = Path(env_str("ACADEMY_VAR_DIR", str(BASE_DIR / "var")))
DATABASE_URL = env_str("DATABASE_URL")
EMBEDDED = DATABASE_URL is None

DEBUG = env_bool("DJANGO_DEBUG", default=EMBEDDED)


def _secret_key() -> str:
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        return key
    if not EMBEDDED:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DATABASE_URL is set.")
    # Embedded mode: a random key kept in var/ so sessions survive restarts.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",  # intcomma: one number format for counts on every page
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "courses",
    "labs",
    "grading",
    "runs",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "academy.middleware.content_security_policy",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions (a signed-in user's saved language rides in the session), before
    # anything that renders.
    "academy.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "academy.middleware.oversized_post",  # before the CSRF check reads the body
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "academy.urls"
WSGI_APPLICATION = "academy.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
            # The `score` filter: one number format for scores on every page.
            "builtins": ["web.templatetags.numbers"],
        },
    },
]

DATABASES: dict[str, Any] = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    if DATABASE_URL
    else {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "academy.sqlite3"}
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Kept open between requests: opening the file and running the PRAGMAs below cost
    # more than a whole cached page.
    DATABASES["default"]["CONN_MAX_AGE"] = 60
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"]["OPTIONS"] = {
        # The web process and the worker write the same file: WAL lets readers
        # proceed during a write, IMMEDIATE avoids lock-upgrade deadlocks.
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so the test suite's worker process can open it too.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_academy.sqlite3")}

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _libpq = DATABASES["default"].setdefault("OPTIONS", {})  # DATABASE_URL's ?key=value win
    # JIT compilation adds ~0.8 s to the HR report and export queries (their many small
    # correlated subqueries inflate the cost estimate past jit_above_cost) and gains
    # nothing on this workload of short queries.
    _libpq.setdefault("options", "-c jit=off")
    # Opening a connection (TCP, TLS, authentication) gives up after this long, even when
    # the server accepts and then never answers: libpq's own clock (2 s at the least).
    _libpq.setdefault("connect_timeout", env_int("ACADEMY_DATABASE_CONNECT_SECONDS", 5))
    # A connection whose peer vanished (host gone, network partition): probed after 30 s
    # of silence, every 10 s, dead after 3 unanswered probes — within a minute instead of
    # the kernel's two hours. Covers a call waiting for its answer, too.
    _libpq.setdefault("keepalives", 1)
    _libpq.setdefault("keepalives_idle", 30)
    _libpq.setdefault("keepalives_interval", 10)
    _libpq.setdefault("keepalives_count", 3)
    # Data sent and left unacknowledged for 30 s (ms here) ends the connection: a
    # partition in the middle of sending a query, where keepalives do not probe.
    _libpq.setdefault("tcp_user_timeout", 30_000)
    # None of these sees a stuck server or a proxy that still acknowledges: the workers
    # bound their own calls (ACADEMY_DATABASE_CALL_SECONDS, academy/deadlines.py).

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["academy.auth.AcademyModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "courses:catalog"
LOGOUT_REDIRECT_URL = "login"

# The default for a visitor whose browser asks for none of LANGUAGES. British English
# stays the default (its date formats are the ones the pages were written with); a
# browser asking for any English gets it, one asking for Chinese gets zh-hans.
LANGUAGE_CODE = "en-gb"
LANGUAGES = [("en-gb", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The switcher's choice outlives the browser session (a signed-in user's is also saved
# on the account: academy/locale.py).
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = env_str("ACADEMY_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_ROOT = Path(env_str("DJANGO_MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# In DEBUG, serve straight from static/ so `collectstatic` is not a setup step.
WHITENOISE_USE_FINDERS = DEBUG

SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
# Production speaks HTTPS only. Behind a proxy that terminates TLS, set
# DJANGO_SECURE_PROXY_SSL_HEADER=1 so Django trusts its X-Forwarded-Proto.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
# Both cover only this host and its own subdomains; "preload" does nothing until the
# domain's owner submits it to the browsers' list.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", default=True)
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Behind a reverse proxy, the header it writes the client's address into (X-Forwarded-For)
# and how many proxies of ours append to it: the per-address sign-in limit counts that
# address, not the proxy's (academy.signin.client_address). Unset: REMOTE_ADDR.
ACADEMY_CLIENT_ADDRESS_HEADER = env_str("ACADEMY_CLIENT_ADDRESS_HEADER", "")
ACADEMY_TRUSTED_PROXY_HOPS = env_int("ACADEMY_TRUSTED_PROXY_HOPS", 1)
if ACADEMY_TRUSTED_PROXY_HOPS < 1:
    raise ImproperlyConfigured("ACADEMY_TRUSTED_PROXY_HOPS must be 1 or more.")


def content_security_policy(*, sso_issuer: str) -> str:
    """No inline script anywhere (htmx and CodeMirror are static files); inline styles stay
    allowed for the server-rendered SVG charts and Pygments. With single sign-on, the
    sign-out form's POST ends in a redirect to the provider: form-action allows its origin."""
    provider = urlsplit(sso_issuer)
    form_action = f"'self' {provider.scheme}://{provider.netloc}" if sso_issuer else "'self'"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
        f"base-uri 'self'; form-action {form_action}; frame-ancestors 'none'"
    )


X_FRAME_OPTIONS = "DENY"

# Rate-limit counters and sessions live in the cache: share one Redis between web
# processes in production, or each process counts alone.
ACADEMY_CACHE_URL = env_str("ACADEMY_CACHE_URL")
CACHES = {
    "default": (
        {"BACKEND": "academy.cache.RedisCache", "LOCATION": ACADEMY_CACHE_URL}
        if ACADEMY_CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    ),
    # Rendered learner pages (web/pagecache.py) stay in each web process's memory:
    # their keys carry the versions they depend on, so a per-process copy is never
    # stale, a hit costs no network round trip, and Redis holds no pages. At about
    # 40 KB a page this is at most ~20 MB a process.
    "pages": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "learner-pages",
        "OPTIONS": {"MAX_ENTRIES": 500},
    },
}

# With a shared cache, sessions are read from it and written through to the database
# (a request then costs no session query). Without one they stay in the database:
# per-process caches would let a signed-out session live on in another web process.
SESSION_ENGINE = (
    "django.contrib.sessions.backends.cached_db"
    if ACADEMY_CACHE_URL
    else "django.contrib.sessions.backends.db"
)

# Reminders go through Django's email backend: printed to the console in the embedded
# mode, SMTP (EMAIL_HOST...) in production unless DJANGO_EMAIL_BACKEND says otherwise.
EMAIL_BACKEND = env_str(
    "DJANGO_EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if EMBEDDED
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("DJANGO_EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"routine_tasks": {"()": "academy.logfilters.RoutineTaskFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("ACADEMY_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Beat's and the worker's three lines per sweep (every 30 s) go to DEBUG.
        **{
            name: {"filters": ["routine_tasks"]}
            for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace")
        },
    },
}

# --- Celery -----------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    # Server-free broker for the embedded mode. Polling at 0.1 s keeps a
    # backlog from building (the 1 s default lags behind a busy queue).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
else:
    # Redis redelivers an unacknowledged task after the visibility timeout; it
    # must exceed the longest run (the hard time limit) or a live run is
    # delivered twice. The database row remains the source of truth anyway.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("ACADEMY_BROKER_VISIBILITY_TIMEOUT", 3600)
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Labs ------------------------------------------------------------------
ACADEMY_JOBS_DIR = Path(env_str("ACADEMY_JOBS_DIR", str(VAR_DIR / "jobs")))
# strict: refuse to run learner code without the full sandbox (bubblewrap +
# setpriv + limits). basic: rlimits only, flagged on every run it touches.
ACADEMY_SANDBOX_MODE = env_str(
    "ACADEMY_SANDBOX_MODE",
    "strict" if (not EMBEDDED or shutil.which("bwrap")) else "basic",
)
if ACADEMY_SANDBOX_MODE not in {"strict", "basic"}:
    raise ImproperlyConfigured("ACADEMY_SANDBOX_MODE must be 'strict' or 'basic'.")
# The cgroup folder in which each run gets its own memory cgroup. Unset: the worker's own
# cgroup (works on cgroup v1 and at a cgroup-namespace root). On cgroup v2 a cgroup that
# holds processes cannot have limited children: run the worker in a leaf (<unit>/worker)
# and name <unit> here. `manage.py sandbox_check` says which memory cap is in force.
ACADEMY_SANDBOX_CGROUP_PARENT = env_str("ACADEMY_SANDBOX_CGROUP_PARENT")
# The same for each run's pids cgroup (its own process limit). Unset: the worker's own pids
# cgroup, or on cgroup v2 ACADEMY_SANDBOX_CGROUP_PARENT (one cgroup carries both limits).
ACADEMY_SANDBOX_PIDS_CGROUP_PARENT = env_str("ACADEMY_SANDBOX_PIDS_CGROUP_PARENT")
# Where no pids cgroup is writable, each concurrent run is lent a uid of this range (first-
# last; no account may use them), so RLIMIT_NPROC, counted per uid machine-wide, counts one
# run only. "off": every run shares uid 65534, and one run's fork bomb can fail another's.
_uid_range = env_str("ACADEMY_SANDBOX_UID_RANGE", "-".join(map(str, DEFAULT_UID_RANGE)))
ACADEMY_SANDBOX_UID_RANGE: tuple[int, int] | None = None
if _uid_range != "off":
    try:
        _first, _last = (int(part) for part in _uid_range.split("-"))
    except ValueError:
        raise ImproperlyConfigured(
            f"ACADEMY_SANDBOX_UID_RANGE must be FIRST-LAST (e.g. 65000-65255) or off, got "
            f"{_uid_range!r}."
        ) from None
    if not 0 < _first <= _last:
        raise ImproperlyConfigured("ACADEMY_SANDBOX_UID_RANGE must run from a low to a high uid.")
    ACADEMY_SANDBOX_UID_RANGE = (_first, _last)
# Each run's job folder quota (a size-capped tmpfs where the worker is root): a run that
# writes more gets "no space left" in its own folder. A MiniLM checkpoint is ~90 MB.
ACADEMY_JOB_DISK_MB = env_int("ACADEMY_JOB_DISK_MB", 1024)
# A worker claims no run while its jobs disk has less free than this (the run stays queued
# for a worker that has room): a run's files come back to that disk when it ends.
ACADEMY_JOBS_MIN_FREE_MB = env_int("ACADEMY_JOBS_MIN_FREE_MB", 2 * ACADEMY_JOB_DISK_MB)
# Once graded, a run's folder keeps only its checkpoint, for re-grading, this long; a run
# that ended any other way keeps nothing (runs/jobs.py, `manage.py prune_jobs`).
ACADEMY_JOB_RETENTION_DAYS = env_int("ACADEMY_JOB_RETENTION_DAYS", 30)
# Threads the engine may use inside one run; on a 2-core box one run uses both.
ACADEMY_TRAINING_THREADS = env_int("ACADEMY_TRAINING_THREADS", os.cpu_count() or 1)
# Held-out grading in bf16 where the CPU or GPU has native bf16 units ("auto"); "fp32"
# makes grades bit-identical across mixed hardware at several times the grading time.
ACADEMY_GRADING_PRECISION = env_str("ACADEMY_GRADING_PRECISION", "auto")
if ACADEMY_GRADING_PRECISION not in {"auto", "fp32", "bf16"}:
    raise ImproperlyConfigured("ACADEMY_GRADING_PRECISION must be 'auto', 'fp32' or 'bf16'.")
# "auto" (the default) trains under bf16 autocast where the CPU or GPU has native bf16
# units: the six labs' references stay within 0.5 points of fp32 held-out accuracy
# (bench/README.md). "fp32" forces full precision.
ACADEMY_TRAINING_PRECISION = env_str("ACADEMY_TRAINING_PRECISION", "auto")
if ACADEMY_TRAINING_PRECISION not in {"auto", "fp32", "bf16"}:
    raise ImproperlyConfigured("ACADEMY_TRAINING_PRECISION must be 'auto', 'fp32' or 'bf16'.")
ACADEMY_HEARTBEAT_SECONDS = env_int("ACADEMY_HEARTBEAT_SECONDS", 5)
# A running submission whose heartbeat is older than this is presumed orphaned.
ACADEMY_STALE_RUN_SECONDS = env_int("ACADEMY_STALE_RUN_SECONDS", 60)
# A worker's database call that is still waiting after this long has its connection
# shut (academy/deadlines.py): a hung call becomes a dropped connection, which a run
# survives. Well below the stale limit, so a hang is noticed before the sweep acts.
ACADEMY_DATABASE_CALL_SECONDS = env_int("ACADEMY_DATABASE_CALL_SECONDS", 10)
ACADEMY_DEMO_ACCOUNTS = env_bool("ACADEMY_DEMO_ACCOUNTS", default=EMBEDDED)
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-runs": {
        "task": "labs.tasks.requeue_stale_runs",
        "schedule": float(env_int("ACADEMY_SWEEP_SECONDS", 30)),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- HR reports and reminders -----------------------------------------------
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "LLM Academy <academy@localhost>")
# Links in reminder emails point here.
ACADEMY_BASE_URL = env_str("ACADEMY_BASE_URL", "http://127.0.0.1:8000")
# Learners get a "due soon" email this many days before the due date.
ACADEMY_REMINDER_DAYS_BEFORE = env_int("ACADEMY_REMINDER_DAYS_BEFORE", 3)
CELERY_BEAT_SCHEDULE["send-reminders"] = {
    "task": "grading.tasks.send_reminders",
    "schedule": float(env_int("ACADEMY_REMINDER_SECONDS", 3600)),
}

# --- Single sign-on (OpenID Connect, docs/sso.md) ----------------------------
# Off unless ACADEMY_OIDC_ISSUER names the provider; its endpoints come from the provider's
# discovery document, fetched when someone signs in (academy/sso.py), never at start-up.
ACADEMY_OIDC_ISSUER = env_str("ACADEMY_OIDC_ISSUER", "").rstrip("/")
ACADEMY_OIDC_PROVIDER_NAME = env_str("ACADEMY_OIDC_PROVIDER_NAME", "your company account")
# mozilla-django-oidc's own settings, under its names: it reads them per request.
OIDC_RP_CLIENT_ID = env_str("ACADEMY_OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env_str("ACADEMY_OIDC_CLIENT_SECRET", "")
if ACADEMY_OIDC_ISSUER and not (OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET):
    raise ImproperlyConfigured(
        "ACADEMY_OIDC_ISSUER is set: ACADEMY_OIDC_CLIENT_ID and ACADEMY_OIDC_CLIENT_SECRET are "
        "required too (the application registered at the provider)."
    )
OIDC_RP_SCOPES = env_str("ACADEMY_OIDC_SCOPES", "openid email profile")
OIDC_RP_SIGN_ALGO = env_str("ACADEMY_OIDC_SIGN_ALGO", "RS256")
# client_secret_basic is every provider's default; "post" sends the secret in the body.
OIDC_TOKEN_USE_BASIC_AUTH = env_str("ACADEMY_OIDC_TOKEN_AUTH", "basic") == "basic"
OIDC_TIMEOUT = env_int("ACADEMY_OIDC_TIMEOUT_SECONDS", 10)
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
# Kept for the id_token_hint of the provider's sign-out.
OIDC_STORE_ID_TOKEN = True
# Where a sign-in maps the provider's claims (dotted for nested ones: realm_access.roles).
ACADEMY_OIDC_CLAIMS = {
    "employee_id": env_str("ACADEMY_OIDC_CLAIM_EMPLOYEE_ID", "employee_id"),
    "department": env_str("ACADEMY_OIDC_CLAIM_DEPARTMENT", "department"),
    "manager": env_str("ACADEMY_OIDC_CLAIM_MANAGER", "manager_id"),
    "roles": env_str("ACADEMY_OIDC_CLAIM_ROLES", "roles"),
    "username": env_str("ACADEMY_OIDC_CLAIM_USERNAME", "preferred_username"),
}
# The values of the roles claim that make someone an instructor or HR.
ACADEMY_OIDC_ROLE_VALUES = {
    "instructor": env_str("ACADEMY_OIDC_INSTRUCTOR_ROLE", "Instructor"),
    "hr": env_str("ACADEMY_OIDC_HR_ROLE", "HR"),
}
if ACADEMY_OIDC_ISSUER:
    AUTHENTICATION_BACKENDS.append("academy.sso.AcademyOIDCBackend")
ACADEMY_CONTENT_SECURITY_POLICY = content_security_policy(sso_issuer=ACADEMY_OIDC_ISSUER)
# Passwords off for everyone but the break-glass accounts (they sign in at /admin/login/
# or /accounts/login/?password while the provider is down).
ACADEMY_LOCAL_LOGIN = env_bool("ACADEMY_LOCAL_LOGIN", default=True)
ACADEMY_BREAK_GLASS_USERS = env_list("ACADEMY_BREAK_GLASS_USERS", [])
if not ACADEMY_LOCAL_LOGIN and not ACADEMY_OIDC_ISSUER:
    raise ImproperlyConfigured(
        "ACADEMY_LOCAL_LOGIN=off needs single sign-on (ACADEMY_OIDC_ISSUER): nobody but the "
        "break-glass accounts could sign in."
    )
