# govlab: every target bootstraps .venv itself, so a fresh clone needs only `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
GOVLAB := $(VENV)/bin/govlab
STAMP := $(VENV)/.installed
EXTRAS ?= service,lab,dev,bench

DATASET ?= healthcare
SIZE ?= tiny
FORMAT ?= delta
SEED ?= 42
HOST ?= 127.0.0.1
PORT ?= 8000
UI_PORT ?= 8866

.PHONY: setup test lint format demo serve worker lab ui seed seed-tiny seed-small \
        seed-medium seed-large bench run-showcase clean

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

demo: $(STAMP)
	$(GOVLAB) demo --dataset $(DATASET) --format $(FORMAT)

serve: $(STAMP)
	$(GOVLAB) serve --host $(HOST) --port $(PORT)

worker: $(STAMP)
	$(GOVLAB) worker

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

seed-tiny seed-small seed-medium seed-large: $(STAMP)
	$(GOVLAB) seed --dataset $(DATASET) --size $(@:seed-%=%) --format $(FORMAT) --seed $(SEED)

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis test-artifacts
