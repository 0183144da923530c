# spillover — set-up and checks. `make demo` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: install install-dev demo test test-fast bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEVSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(STAMP)

install: $(STAMP)

install-dev: $(DEVSTAMP)

demo: $(STAMP)
	$(BIN)/spillover demo

test: $(DEVSTAMP)
	$(BIN)/python -m pytest

test-fast: $(DEVSTAMP)
	$(BIN)/python -m pytest -m "not spark and not slow"

docs: $(STAMP)
	$(BIN)/python -m spillover.clidocs > docs/cli.md

bench: $(DEVSTAMP)
	$(BIN)/python benchmarks/ingest_ga4.py

clean:
	rm -rf $(VENV) .pytest_cache spark-warehouse spillover.duckdb
