# One entry point for people and CI. `make run` starts the service; `make test` runs
# every test (it installs what the tests need first, so it works on a fresh machine).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NODE_DIR := tests/node

.PHONY: install run test lint typecheck check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed $(NODE_DIR)/node_modules/.installed

# Starts authsvc on the embedded SQLite database (./authsvc.db) on http://127.0.0.1:8000.
# A secret is generated for this run unless NEXTAUTH_SECRET is already set.
run: $(VENV)/.installed
	NEXTAUTH_SECRET="$${NEXTAUTH_SECRET:-$$($(BIN)/authsvc gen-secret)}" \
	NEXTAUTH_URL="$${NEXTAUTH_URL:-http://localhost:8000}" \
	$(BIN)/authsvc serve --host 127.0.0.1 --port 8000

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
