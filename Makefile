# The two commands of the README: `make run` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3.11
# Options for `agent up`, e.g. make run ARGS="--workers 2 --api-port 8080"
ARGS ?=
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Exact versions of every dependency: the fleet uses celery's and kombu's internals (docs/operations.md#dependencies).
# `make lock` after editing pyproject.toml keeps the other pins; `make lock LOCK_FLAGS=--upgrade` takes the newest.
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
LOCK_FLAGS ?=
COMPILE = $(BIN)/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 --extra postgres $(LOCK_FLAGS)

.PHONY: install lock run test lint types unit integration e2e bench clean

$(STAMP): pyproject.toml $(LOCK) $(DEV_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r $(DEV_LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'uv>=0.5,<1'

# The dev lock first; the runtime lock is then held to its versions (the image runs what the tests ran).
lock: $(BIN)/uv
	$(COMPILE) --extra dev -o $(DEV_LOCK)
	$(COMPILE) --constraint $(DEV_LOCK) -o $(LOCK)

run: install
	$(BIN)/agent up $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

types: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit -q

integration: install
	$(BIN)/pytest tests/integration -q

e2e: install
	$(BIN)/pytest tests/e2e -q

# Then the integration and fault tests again on the libraries' own code (FLEET_STOCK_LIBRARIES, docs/PATCHES.md), less
# those asserting what only the patches give (marker `patches`).
STOCK_TESTS ?= tests/integration tests/faults

# Tests run in parallel processes (pytest-xdist), each with its own Redis, database and workers: most of a test's time
# is spent waiting on processes it started. TEST_WORKERS=0 runs them in this process, one after another.
TEST_WORKERS ?= 4
PYTEST = $(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal

test: lint types
	$(PYTEST)
	FLEET_STOCK_LIBRARIES=true $(PYTEST) -m "not patches" $(STOCK_TESTS)

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
