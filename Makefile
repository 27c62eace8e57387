# The two set-up commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test lint install install-test bench bench-full bench-smoke services clean schema docs-benchmarks

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -e ".[test,bench,lint]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## make run: install into .venv and start the service on the embedded defaults (Ctrl-C stops it)
run: install
	$(VENV)/bin/analytics run

## make services: make sure PostgreSQL, Redis and NATS answer on loopback (tests use them)
services:
	bash deploy/local/ensure-test-services.sh

## make lint: style and bugs (ruff), types of core/storage/semantic (mypy), the import layers (import-linter)
lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## make test: install the test extras, make sure the services run, lint, run the whole suite
## (but the benchmarks' tiny end-to-end runs: make bench-smoke; CI runs both)
test: install-test services lint
	$(PY) -m pytest -m "not bench_smoke"

## make bench-smoke: the ingest, query, report and dashboard benchmarks, each run whole once at its tiny size
bench-smoke: install-test services
	$(PY) -m pytest -m bench_smoke

bench: install-test
	$(PY) -m bench.run --size small

bench-full: install-test
	$(PY) -m bench.run --size full

## make docs-benchmarks: render the figures tables of docs/benchmarks.md and README.md from bench/results/*.json
docs-benchmarks: $(VENV)/bin/python
	$(PY) -m bench.benchmarks_doc

## make schema: write the GraphQL SDL to schema.graphql (tests/graphql/test_schema_sdl.py checks it is current)
schema: install-test
	$(VENV)/bin/strawberry export-schema graphql_schema.schema:schema --output schema.graphql

clean:
	rm -rf $(VENV) .analytics-data .pytest_cache
