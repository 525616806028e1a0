# Rapport: `make run` serves a demo, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_EMAIL ?= admin@example.com
DEMO_PASSWORD ?= rapport-demo
DEMO_CONTACTS ?= 3000

.PHONY: run serve test install lint format check-python bench screenshots

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null || { \
	  echo "Rapport needs Python 3.12 or newer; '$(PYTHON)' is $$($(PYTHON) -V 2>&1)."; \
	  echo "Install Python 3.13 (see .python-version) or run: make PYTHON=/path/to/python3.13 ..."; \
	  exit 1; }

$(VENV)/.installed: pyproject.toml
	@$(MAKE) --no-print-directory check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

run: install
	@mkdir -p var
	$(PY) manage.py migrate --noinput -v0
	@$(PY) manage.py bootstrap --workspace Demo --agent Support \
	  --admin-email $(DEMO_EMAIL) --admin-password $(DEMO_PASSWORD) > var/bootstrap.json
	$(PY) manage.py seed_demo --workspace Demo --agent Support --contacts $(DEMO_CONTACTS)
	@echo
	@echo "  Rapport is running at http://$(HOST):$(PORT)/"
	@echo "  Sign in as $(DEMO_EMAIL) / $(DEMO_PASSWORD)"
	@echo "  Agent keys (the API key is shown on first run only): $$(cat var/bootstrap.json)"
	@echo
	@trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  $(PY) manage.py worker --no-reload --no-startup-delay & worker=$$!; \
	  $(PY) manage.py runserver $(HOST):$(PORT)

# Production on this machine: migrations, static files, gunicorn and the task worker(s)
# (manage.py serve). Settings come from the environment; SECRET_KEY defaults to one made
# once in var/secret_key. It expects a TLS proxy in front (BEHIND_TLS_PROXY); LOCAL_HTTP=1
# lets a browser use plain http://HOST:PORT for a trial.
SERVE_ENV = RAPPORT_ENV=production \
	ALLOWED_HOSTS="$${ALLOWED_HOSTS:-localhost,127.0.0.1}" \
	SECRET_KEY="$${SECRET_KEY:-$$(cat var/secret_key)}" \
	BEHIND_TLS_PROXY="$${BEHIND_TLS_PROXY:-true}" \
	PROMETHEUS_MULTIPROC_DIR="$${PROMETHEUS_MULTIPROC_DIR:-$(CURDIR)/var/prometheus}" \
	HOST=$(HOST) PORT=$(PORT)
ifeq ($(LOCAL_HTTP),1)
SERVE_ENV += SECURE_SSL_REDIRECT=false SESSION_COOKIE_SECURE=false CSRF_COOKIE_SECURE=false \
	SECURE_HSTS_SECONDS=0
endif

var/secret_key:
	@mkdir -p var
	@umask 077 && $(PY) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@

serve: install var/secret_key
	@$(SERVE_ENV) $(PY) manage.py serve

# axe-core (package.json) for the browser suite's accessibility checks; without npm they skip.
node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error; \
	  else echo "npm not found: the accessibility checks will skip (install Node.js to run them)"; fi

test: install node_modules/.package-lock.json
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The benchmark. With DATABASE_URL=postgres://… every section on PostgreSQL, its database
# created when missing; without DATABASE_URL the table and import sections on SQLite, in
# var/bench.sqlite3 (never the development database). The database is migrated first.
# BENCH_ARGS passes options on: make bench BENCH_ARGS="--contacts 10000000 --sections table".
bench: install
	export DATABASE_URL="$${DATABASE_URL:-sqlite:///$(CURDIR)/var/bench.sqlite3}"; \
	  $(PY) -m bench.database && $(PY) manage.py migrate --noinput -v0 && $(PY) -m bench $(BENCH_ARGS)

# Refresh the README's screenshots (taken by the browser tests).
screenshots: install
	UPDATE_SCREENSHOTS=1 CI=true $(BIN)/pytest tests/contacts/test_browser_dashboard.py \
		tests/contacts/test_browser_bulk.py tests/contacts/test_browser_segments.py \
		tests/workspaces/test_browser_members.py tests/identity/test_browser_widget_panel.py
