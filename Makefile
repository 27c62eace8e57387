# The two set-up commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test install install-test bench bench-full services clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## make run: install into .venv and start the service on the embedded defaults (Ctrl-C stops it)
run: install
	$(VENV)/bin/analytics run

## make services: make sure PostgreSQL, Redis and NATS answer on loopback (tests use them)
services:
	bash deploy/local/ensure-test-services.sh

## make test: install the test extras, make sure the services run, run the whole suite
test: install-test services
	$(PY) -m pytest

bench: install-test
	$(PY) -m bench.run --size small

bench-full: install-test
	$(PY) -m bench.run --size full

clean:
	rm -rf $(VENV) .analytics-data .pytest_cache
