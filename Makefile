# wedsync-db: `make up` runs the database + API, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WEDSYNC_HTTP_PORT ?= 8080
WEDSYNC_HTTP_HOST ?= 127.0.0.1

.PHONY: up test lint format typecheck check bench bench-smoke venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "wedsync-db needs Python 3.11 or newer (PYTHON=$(PYTHON))")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/wedsync-db up --host $(WEDSYNC_HTTP_HOST) --port $(WEDSYNC_HTTP_PORT)

# Two pytest-xdist workers, each with its own embedded server; against a shared server
# (WEDSYNC_TEST_DATABASE_URL) the run is serial, as tests/conftest.py also enforces.
TEST_WORKERS ?= $(if $(WEDSYNC_TEST_DATABASE_URL),0,2)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --cov --cov-report=term $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench-smoke: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b --smoke || exit 1; done

clean:
	rm -rf $(VENV) .coverage .coverage.* .pytest_cache .mypy_cache .ruff_cache
