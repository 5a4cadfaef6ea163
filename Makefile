# One entry point for people and CI. `make run` starts the service; `make test` runs
# every test (it installs what the tests need first, so it works on a fresh machine).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NODE_DIR := tests/node
PORT ?= 8000
# The runtime dependencies, hash-pinned; `make lock` refreshes it with this uv release.
LOCK := requirements.lock
UV_VERSION := 0.13.8

.PHONY: install run test lint typecheck check clean lock smoke test-lowest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# What the service needs to run, exactly as locked (every download checked against its
# hash), then authsvc itself; the Dockerfile installs the same way.
$(VENV)/.runtime: $(LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# The tests, linters and the benchmark on top of the locked runtime.
$(VENV)/.installed: $(VENV)/.runtime pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed $(NODE_DIR)/node_modules/.installed

# The first start writes .env (`authsvc init`: a new secret, NEXTAUTH_URL on this port);
# every later start and every authsvc command run here reads it, so sessions survive.
.env: | $(VENV)/.runtime
	$(BIN)/authsvc init --url http://127.0.0.1:$(PORT)

# Starts authsvc on the embedded SQLite database (./authsvc.db) on http://127.0.0.1:8000,
# with the settings in .env (variables set in the environment win).
run: $(VENV)/.runtime .env
	$(BIN)/authsvc serve --host 127.0.0.1 --port $(PORT)

# Re-resolve the runtime dependencies of pyproject.toml into the lock (for every platform
# and Python 3.11+), with the hashes of every file.
lock: $(BIN)/python
	$(BIN)/pip install --quiet 'uv==$(UV_VERSION)'
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
		--quiet -o $(LOCK)

test: install
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

check: lint typecheck test

# The locked runtime dependencies only, in a fresh virtualenv per interpreter, then tests/smoke.py
# (CLI, a real `authsvc serve`, sign-in, /session, /verify). .ci/run passes the interpreters
# the whole suite does not run on: make smoke SMOKE_PYTHONS="/path/python3.11 /path/python3.12"
SMOKE_PYTHONS ?= $(PYTHON)
smoke:
	for python in $(SMOKE_PYTHONS); do \
	  venv=.venv-smoke-$$($$python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  rm -rf $$venv && $$python -m venv $$venv \
	    && $$venv/bin/pip install --quiet --require-hashes -r $(LOCK) \
	    && $$venv/bin/pip install --quiet --no-deps . \
	    && $$venv/bin/python -m tests.smoke || exit 1; \
	done

# The lowest versions pyproject.toml allows for each direct dependency (uv's lowest-direct
# resolution, on the oldest supported Python), checked to be exactly the declared minimums,
# then the unit tests on them: the in-process tests of tokens, cookies, settings, routes,
# the user store (SQLite and PostgreSQL), migrations, throttling (Redis) and the library
# dependency; not the tests that drive Node, browsers, proxies or the CLI in processes.
LOWEST := .venv-lowest
LOWEST_PYTHON ?= $(PYTHON)
UNIT_TESTS := tests/unit/test_callbacks.py tests/unit/test_cookies.py \
  tests/unit/test_app_cors.py tests/unit/test_csrf.py tests/unit/test_database_url.py \
  tests/unit/test_deps.py tests/unit/users/test_emails.py tests/unit/test_events.py \
  tests/unit/test_forward_auth.py tests/unit/routes/test_health.py \
  tests/unit/test_lookups.py tests/unit/test_migrations.py \
  tests/unit/test_oauth_checks.py tests/unit/test_openapi.py \
  tests/unit/users/test_passwords.py tests/unit/providers/test_oauth_client.py \
  tests/unit/test_redirects.py tests/unit/test_revocation.py \
  tests/unit/routes/test_auth.py tests/unit/routes/test_context.py \
  tests/unit/routes/test_forward_auth.py tests/unit/routes/test_auth_v5.py \
  tests/unit/test_settings.py tests/unit/test_token_cache.py tests/unit/test_tokens.py \
  tests/unit/users/test_repository.py tests/interop/test_vectors.py \
  tests/unit/test_dependencies.py tests/unit/test_throttle.py \
  tests/unit/sign_in/test_credentials_flow.py
test-lowest: $(VENV)/.installed
	$(BIN)/pip install --quiet 'uv==$(UV_VERSION)'
	rm -rf $(LOWEST)
	$(BIN)/uv venv --quiet --python $(LOWEST_PYTHON) $(LOWEST)
	VIRTUAL_ENV=$(LOWEST) $(BIN)/uv pip compile --quiet --resolution lowest-direct \
	  --no-header --no-annotate pyproject.toml -o $(LOWEST)/requirements.txt
	VIRTUAL_ENV=$(LOWEST) $(BIN)/uv pip sync --quiet $(LOWEST)/requirements.txt
	VIRTUAL_ENV=$(LOWEST) $(BIN)/uv pip install --quiet --no-deps -e .
	VIRTUAL_ENV=$(LOWEST) $(BIN)/uv pip install --quiet -c $(LOWEST)/requirements.txt \
	  pytest pytest-asyncio hypothesis
	$(LOWEST)/bin/python -m tests.lowest_versions $(LOWEST)/requirements.txt
	$(LOWEST)/bin/pytest -q -p no:cacheprovider $(UNIT_TESTS)

clean:
	rm -rf $(VENV) $(LOWEST) .venv-smoke-* $(NODE_DIR)/node_modules .mypy_cache .ruff_cache .pytest_cache
