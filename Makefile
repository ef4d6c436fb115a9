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

.PHONY: run test setup lint types layers unit pytest pytest-postgres coverage bench bench-bus bench-compare bench-topics bench-fleet clean \
  demo compat console console-test e2e chromium dist

# pip prints a line per package it collects and installs (--progress-bar on): a first setup takes
# a while, and silence looks like a hang.
$(BIN)/python:
	@echo "setup: creating the virtualenv $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar on --upgrade pip

$(STAMP): $(BIN)/python packages/opstage/pyproject.toml packages/opstage-testing/pyproject.toml requirements-dev.txt
	@echo "setup: installing opstage, opstage-agent and the dev tools into $(VENV)"
	$(BIN)/pip install --progress-bar on -e 'packages/opstage[postgres]' -e packages/opstage-agent -e packages/opstage-testing -r requirements-dev.txt
	touch $(STAMP)
	@echo "setup: done"

setup: $(STAMP)

# --- the admin console (console/, README "Console") -----------------------------------------
# Built into the server package, which serves it at /. Rebuilt only when a source file is
# newer than the build; `npm ci` only when the lockfile changed. Without Node and npm, `make run`
# stops here: build elsewhere, or run `opstage serve` (the API works; / answers STATIC_NOT_FOUND).
CONSOLE_DIST := packages/opstage/src/opstage/console/dist
CONSOLE_BUILT := $(CONSOLE_DIST)/index.html
CONSOLE_MODULES := console/node_modules/.package-lock.json
CONSOLE_SOURCES := $(shell find console/src console/public -type f 2>/dev/null) \
  console/index.html console/vite.config.ts console/tsconfig.json console/package.json \
  console/scripts/copy-swagger.mjs
CHROMIUM ?= /usr/bin/chromium
DIST_DIR ?= dist

$(CONSOLE_MODULES): console/package-lock.json
	@command -v npm >/dev/null || { echo "make: npm (Node 18+) is needed to build the console"; exit 1; }
	cd console && npm ci --no-audit --no-fund
	touch $(CONSOLE_MODULES)

$(CONSOLE_BUILT): $(CONSOLE_MODULES) $(CONSOLE_SOURCES)
	cd console && npm run build

console: $(CONSOLE_BUILT)

# Type check, the generated API types against contracts/ (fails on drift), component tests,
# and the first-load size budget (gzip, 500 KB) of the build.
console-test: $(CONSOLE_MODULES) $(CONSOLE_BUILT)
	cd console && npm run typecheck && npm run api:check && npm test && npm run size

# Debian's Chromium for Playwright (never `playwright install`: its download host is not used).
chromium:
	@test -x $(CHROMIUM) || { apt-get update && apt-get install -y chromium; }

# Playwright in headless Chromium against a real server and the real demo agent; saves
# docs/screenshots/*.png.
e2e: $(STAMP) $(CONSOLE_BUILT) chromium
	cd console && CHROMIUM=$(CHROMIUM) npm run e2e

# The server wheel with the built console inside (and the agent SDK's wheel).
dist: $(STAMP) $(CONSOLE_BUILT)
	$(BIN)/pip wheel --quiet --no-deps packages/opstage packages/opstage-agent -w $(DIST_DIR)

run: $(STAMP) $(CONSOLE_BUILT)
	mkdir -p $(DATA_DIR)
	OPSTAGE_DEV_MODE=$${OPSTAGE_DEV_MODE:-true} OPSTAGE_DATA_DIR=$(DATA_DIR) \
	  $(BIN)/opstage serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check packages bench examples

types: $(STAMP)
	$(BIN)/mypy packages/opstage/src
	$(BIN)/mypy packages/opstage-agent/src
	$(BIN)/mypy packages/opstage-testing/src

layers: $(STAMP)
	$(BIN)/lint-imports

# SQLite pass, then the whole suite again with DATABASE_URL on PostgreSQL (the fixture finds
# the machine's server or starts a private cluster from Debian's packages). Most tests wait on
# real server processes, so three workers on two cores cut the wall time by ~40%.
PYTEST_WORKERS ?= 3
TESTS ?= packages/opstage/tests packages/opstage-agent/tests

pytest: $(STAMP)
	$(BIN)/pytest $(TESTS) -n $(PYTEST_WORKERS) --durations=15

pytest-postgres: $(STAMP)
	OPSTAGE_TEST_ENGINE=postgres $(BIN)/pytest $(TESTS) -n $(PYTEST_WORKERS) -m 'not sqlite_only' --durations=15

# The suite under coverage, the servers it starts as processes included ([tool.coverage.run]
# in pyproject.toml; ADR 0013). Not part of `test`: it takes about three times as long.
coverage: $(STAMP)
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest $(TESTS) -n $(PYTEST_WORKERS) -q
	$(BIN)/coverage combine -q
	$(BIN)/coverage report --skip-covered --sort=cover

test: lint types layers console-test e2e pytest pytest-postgres

# Opstage plus the demo Capsule Service (examples/demo_service), data in ./data-demo.
demo: $(STAMP) $(CONSOLE_BUILT)
	$(BIN)/python examples/demo_service/launch.py --data-dir ./data-demo --host $(HOST) --port $(PORT)

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Capsule Bus ingest at 0, 100k and 1M stored events (bench/README.md).
bench-bus: $(STAMP)
	$(BIN)/python bench/bus_ingest.py

# Both benches' phases for BASE (a git revision, in a temporary worktree) and this tree,
# alternated in one run; medians and head/base per phase (bench/compare.py).
BASE ?= main
bench-compare: $(STAMP)
	$(BIN)/python bench/compare.py --base $(BASE)

# The differential suite against the reference server (docs/compatibility.md, "make compat").
# Not part of `test`: it needs Node.js and a built reference checkout in REF_REPO (or a running
# reference in REF_URL). This repository carries none of the reference's code and no recipe
# that builds it.
compat: $(STAMP)
	@if [ -z "$(REF_REPO)$(REF_URL)" ]; then \
	  echo "make compat: set REF_REPO=<built xtrape-capsule-ce checkout> or REF_URL=<running reference>"; exit 2; fi
	REF_REPO="$(REF_REPO)" REF_URL="$(REF_URL)" $(BIN)/python -m compat.run

# Topic bus, per engine: publish req/s at 16 and 64 publishers, publish→subscriber p50/p99,
# and the ratio to the engine's own client (bench/topics.py).
bench-topics: $(STAMP)
	$(BIN)/python bench/topics.py

# How many agents one node carries: N = 1k, 5k, 10k, 20k, … simulated agents until a step misses
# the service level (bench/fleet.py; FLEET_ARGS="--duration 10 --steps 200,500" for a smoke).
bench-fleet: $(STAMP)
	$(BIN)/python bench/fleet.py $(FLEET_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
