# govlab: every target bootstraps .venv itself, so a fresh clone needs only `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
GOVLAB := $(VENV)/bin/govlab
STAMP := $(VENV)/.installed
EXTRAS ?= service,lab,dev,bench,distributed

DATASET ?= healthcare
SIZE ?= tiny
FORMAT ?= delta
SEED ?= 42
HOST ?= 127.0.0.1
PORT ?= 8000
UI_PORT ?= 8866
SIZES ?= tiny,small
FORMATS ?= delta,parquet,iceberg
NBVAL := --nbval notebooks --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-current-env

.PHONY: setup test lint format demo serve worker lab ui seed seed-batch seed-tiny seed-small \
        seed-medium seed-large bench run-showcase examples examples-js docker-up docker-down clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: $(STAMP) lint
	$(PY) -m pytest -q
	$(PY) -m pytest -q -p no:cacheprovider $(NBVAL)

demo: $(STAMP)
	$(GOVLAB) demo --dataset $(DATASET) --format $(FORMAT)

serve: $(STAMP)
	$(GOVLAB) serve --host $(HOST) --port $(PORT)

worker: $(STAMP)
	$(GOVLAB) worker

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

# The stepper notebook as a web app at 127.0.0.1:$(UI_PORT); idle kernels are culled.
# GOVLAB_API_URL / GOVLAB_DATA_DIR / GOVLAB_SECRET from the environment reach the kernel.
ui: $(STAMP)
	$(GOVLAB) ui --port $(UI_PORT)

# papermill runs notebooks/seed.ipynb; the executed notebook under runs/ is the record
seed: $(STAMP)
	$(GOVLAB) seed --record --dataset $(DATASET) --size $(SIZE) --format $(FORMAT) --seed $(SEED)

seed-batch: $(STAMP)
	$(GOVLAB) seed --dataset $(DATASET) --seed $(SEED) --batch sizes=$(SIZES) formats=$(FORMATS)

seed-tiny seed-small seed-medium seed-large: $(STAMP)
	$(GOVLAB) seed --record --dataset $(DATASET) --size $(@:seed-%=%) --format $(FORMAT) --seed $(SEED)

examples: $(STAMP)
	$(PY) examples/python/load_parquet_example.py
	$(PY) examples/python/load_iceberg_example.py
	$(PY) examples/python/search_delta_redis.py --start

examples-js:
	cd examples/js && { test -d node_modules/@bilgrami/smart-search || npm ci --no-audit --no-fund; } && npx tsc --noEmit && npx vitest run

# A benchmark, not a test: writes benchmarks/RESULTS.md and benchmarks/results.json.
# BENCH_SIZES=small,medium by default; LARGE=1 adds the 5M-row size.
BENCH_SIZES ?= small,medium
bench: $(STAMP)
	$(PY) -m benchmarks.run --sizes $(BENCH_SIZES) $(if $(LARGE),--large,) \
		--baseline benchmarks/results-round2.json --label round3 \
		--out benchmarks/results.json --md benchmarks/RESULTS.md
	$(PY) -m benchmarks.bench_daft $(if $(LARGE),--large,)

run-showcase: $(STAMP)
	bash examples/run-showcase.sh

docker-up:
	docker compose --env-file $(if $(wildcard .env),.env,.env.example) -f docker/docker-compose.yml up --build -d

docker-down:
	docker compose -f docker/docker-compose.yml down

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis test-artifacts
