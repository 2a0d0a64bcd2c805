# Two commands matter: `make run` and `make test` (see README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test check lint format typecheck bench system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

## Run every service on http://127.0.0.1:8000 with the embedded database and demo data.
run: $(VENV)/.installed-run
	$(BIN)/erx serve --demo

## Lint, type-check and run the whole suite (SQLite + a throwaway PostgreSQL + headless Chromium).
test: $(VENV)/.installed-test system-deps check
	$(BIN)/pytest $(PYTEST_ARGS)

check: lint typecheck

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy erx eprescribe pharmacy_gateway price_portal interop

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## PostgreSQL server binaries and Chromium, from the machine's packages, when missing.
system-deps:
	bash scripts/system-deps.sh

## Benchmarks on a throwaway PostgreSQL; prints a table.
bench: $(VENV)/.installed-test system-deps
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
