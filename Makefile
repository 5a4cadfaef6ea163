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

.PHONY: install run test lint typecheck check clean lock

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

clean:
	rm -rf $(VENV) $(NODE_DIR)/node_modules .mypy_cache .ruff_cache .pytest_cache
