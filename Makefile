# govlab: every target bootstraps .venv itself, so a fresh clone needs only `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= service,lab,dev,bench

DATASET ?= healthcare
SIZE ?= tiny
FORMAT ?= delta
SEED ?= 42

.PHONY: setup test lint format seed seed-tiny seed-small seed-medium seed-large clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: $(STAMP) lint
	$(PY) -m pytest -q

seed: $(STAMP)
	$(VENV)/bin/govlab seed --dataset $(DATASET) --size $(SIZE) --format $(FORMAT) --seed $(SEED)

seed-tiny seed-small seed-medium seed-large: $(STAMP)
	$(VENV)/bin/govlab seed --dataset $(DATASET) --size $(@:seed-%=%) --format $(FORMAT) --seed $(SEED)

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis
