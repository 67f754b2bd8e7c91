# The two commands: `make run` and `make test`. Everything they need is installed from here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest options for every suite, e.g. `make test PYTEST_ARGS=-x`
PYTEST_ARGS ?=

.PHONY: run test install install-test vendor lint migrations-check test-sqlite test-postgres test-browser test-sqlite-then-browser postgres-up chromium demo bench fuzz clean

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml client/pyproject.toml
	$(PIP) install -q -e ".[demo]" -e ./client
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml client/pyproject.toml
	$(PIP) install -q -e ".[test]"
	touch $@

# axe-core for the browser tests, oidc-provider for the single sign-on tests (and Plotly's partial bundle, which
# `make vendor` copies into static/vendor).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed

# Copy Plotly's basic partial bundle (scatter, bar, pie: all the dashboard draws) from npm into static/vendor, where it
# is committed: `make run` needs no npm and nothing is fetched at run time. Run after changing its version in package.json.
vendor: node_modules/.installed
	cp node_modules/plotly.js-basic-dist-min/plotly-basic.min.js static/vendor/plotly-basic.min.js
	cp node_modules/plotly.js-basic-dist-min/LICENSE static/vendor/plotly-basic.LICENSE
install-test: $(VENV)/.installed-test node_modules/.installed

var/secret_key:
	mkdir -p var
	$(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@
	chmod 600 $@

# Serve the dashboard on http://$(HOST):$(PORT) with demo data and an admin account.
run: install var/secret_key
	export SECRET_KEY="$$(cat var/secret_key)" REGISTRY_HTTPS=false DEBUG=false; \
	$(PY) manage.py migrate --noinput && \
	$(PY) manage.py collectstatic --noinput -v 0 && \
	$(PY) manage.py demo --if-empty && \
	$(PY) manage.py ensure_admin && \
	echo "Serving on http://$(HOST):$(PORT)/ (Ctrl-C to stop)" && \
	exec $(VENV)/bin/gunicorn registry.wsgi --bind $(HOST):$(PORT) --workers 2 --threads 4 --access-logfile -

demo: install var/secret_key
	SECRET_KEY="$$(cat var/secret_key)" $(PY) manage.py demo

# Tests close connections after each request: live-server threads must not hold the test database open.
TEST_ENV := SECRET_KEY=insecure-test-key-not-for-production REGISTRY_HTTPS=false DB_CONN_MAX_AGE=0

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

migrations-check: install-test
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run

test-sqlite: install-test
	$(TEST_ENV) $(PY) -m pytest -m "not browser" $(PYTEST_ARGS)

postgres-up:
	@if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
		echo "Starting PostgreSQL"; \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
		for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
	fi

test-postgres: install-test postgres-up
	$(TEST_ENV) DATABASE_URL=$(PG_URL) $(PY) -m pytest -m "not browser" $(PYTEST_ARGS)

chromium:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

test-browser: install-test chromium
	$(TEST_ENV) $(PY) -m pytest -m browser $(PYTEST_ARGS)

# Two lanes side by side (each suite waits on its database and its test servers about half the time): the SQLite
# suite and then the browser tests, and the PostgreSQL suite, the longer one; each lane's output is printed whole
# when it ends.
test: lint migrations-check
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite-then-browser test-postgres

test-sqlite-then-browser:
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-browser

# A longer schemathesis run of the JSON API than the bounded one `make test` includes (tests/api/test_openapi_fuzz.py):
# `make fuzz FUZZ_EXAMPLES=50 FUZZ_SEED=7`.
FUZZ_EXAMPLES ?= 30
FUZZ_SEED ?= 1
fuzz: install-test
	$(TEST_ENV) FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=$(FUZZ_SEED) FUZZ_PHASES=all $(PY) -m pytest tests/api/test_openapi_fuzz.py $(PYTEST_ARGS)

# Figures, not timed tests: ingestion through the API, dashboard pages on a generated registry, the MLflow client,
# a 2 GB transfer straight to and from S3 (moto).
bench: install-test
	$(TEST_ENV) $(PY) benchmarks/api_ingest.py
	$(TEST_ENV) $(PY) benchmarks/dashboard.py
	$(TEST_ENV) $(PY) benchmarks/mlflow_compare.py
	$(TEST_ENV) $(PY) benchmarks/transfers.py

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
