# The two sacred commands: `make run` and `make test`. Everything they need is set up here,
# so a fresh machine with only Python 3.11+ gets there on its own.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= ./data
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test setup lint types layers unit pytest pytest-postgres bench bench-bus bench-topics clean demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python packages/opstage/pyproject.toml requirements-dev.txt
	$(BIN)/pip install --quiet -e 'packages/opstage[postgres]' -e packages/opstage-agent -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	mkdir -p $(DATA_DIR)
	OPSTAGE_DEV_MODE=$${OPSTAGE_DEV_MODE:-true} OPSTAGE_DATA_DIR=$(DATA_DIR) \
	  $(BIN)/opstage serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check packages bench examples

types: $(STAMP)
	$(BIN)/mypy packages/opstage/src
	$(BIN)/mypy packages/opstage-agent/src

layers: $(STAMP)
	$(BIN)/lint-imports

# SQLite pass, then the whole suite again with DATABASE_URL on PostgreSQL (the fixture finds
# the machine's server or starts a private cluster from Debian's packages). Most tests wait on
# real server processes, so three workers on two cores cut the wall time by ~40%.
PYTEST_WORKERS ?= 3
TESTS := packages/opstage/tests packages/opstage-agent/tests

pytest: $(STAMP)
	$(BIN)/pytest $(TESTS) -n $(PYTEST_WORKERS)

pytest-postgres: $(STAMP)
	OPSTAGE_TEST_ENGINE=postgres $(BIN)/pytest $(TESTS) -n $(PYTEST_WORKERS) -m 'not sqlite_only'

test: lint types layers pytest pytest-postgres

# Opstage plus the demo Capsule Service (examples/demo_service), data in ./data-demo.
demo: $(STAMP)
	$(BIN)/python examples/demo_service/launch.py --data-dir ./data-demo --host $(HOST) --port $(PORT)

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Capsule Bus ingest at 0, 100k and 1M stored events (bench/README.md).
bench-bus: $(STAMP)
	$(BIN)/python bench/bus_ingest.py

# Topic bus, per engine: publish req/s at 16 and 64 publishers, publish→subscriber p50/p99,
# and the ratio to the engine's own client (bench/topics.py).
bench-topics: $(STAMP)
	$(BIN)/python bench/topics.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
