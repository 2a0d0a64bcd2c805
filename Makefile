# Two commands matter: `make run` and `make test` (see README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=
# Every install comes from the lock files, so a clean clone gets the versions that were tested.
LOCKED := $(BIN)/pip install --quiet --require-hashes -r

.PHONY: run test check check-deploy lint format typecheck architecture deps lock bench system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: requirements/run.txt pyproject.toml | $(BIN)/python
	$(LOCKED) requirements/run.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: requirements/test.txt pyproject.toml | $(BIN)/python
	$(LOCKED) requirements/test.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.installed-run

## Run every service on http://127.0.0.1:8000 with the embedded database and demo data.
run: $(VENV)/.installed-run
	$(BIN)/erx serve --demo

## Lint, type-check, check the architecture and run the whole suite (SQLite + a throwaway PostgreSQL + headless Chromium).
test: $(VENV)/.installed-test system-deps check
	$(BIN)/pytest $(PYTEST_ARGS)

check: lint typecheck architecture deps check-deploy

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy kit eprescribe pharmacy_gateway price_portal erx tests bench

## Layers point one way and contexts meet only through services (import-linter contracts in pyproject.toml).
architecture: $(VENV)/.installed-test
	$(BIN)/lint-imports

## Every imported package is declared and every declared one is used.
deps: $(VENV)/.installed-test
	$(BIN)/deptry .

## Validate the Dockerfile, the Compose stack, the Kubernetes manifests and the nginx configs
## offline (no Docker engine, no cluster; nginx comes from the machine's packages).
check-deploy: $(VENV)/.installed-test
	bash scripts/check-deploy.sh

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Re-resolve the lock files from pyproject.toml (needs the `lock` extra: uv).
lock:
	$(BIN)/pip install --quiet 'uv>=0.9'
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q -o requirements/run.txt
	$(BIN)/uv pip compile pyproject.toml --extra test --extra deploy --python-version 3.11 --generate-hashes -q -o requirements/test.txt
	$(BIN)/uv pip compile pyproject.toml --extra test --extra bench --python-version 3.11 --generate-hashes -q -o requirements/bench.txt

## PostgreSQL server binaries and Chromium, from the machine's packages, when missing.
system-deps:
	bash scripts/system-deps.sh

$(VENV)/.installed-bench: requirements/bench.txt pyproject.toml | $(BIN)/python
	$(LOCKED) requirements/bench.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.installed-test $(VENV)/.installed-run

## Benchmarks: own PostgreSQL (seeded once, reused), the server as in production, wrk; one table.
## BENCH_ARGS passes options, e.g. `make bench BENCH_ARGS=--quick` or `BENCH_ARGS="--soak 600"`.
BENCH_ARGS ?=
bench: $(VENV)/.installed-bench system-deps
	bash scripts/bench-deps.sh
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
