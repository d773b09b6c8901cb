# mdp: run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
# uv comes from PATH, or is installed from PyPI into .tools/ on first use.
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --frozen
export AIRFLOW__API__HOST ?= 127.0.0.1

.PHONY: help install demo test lint fmt clean airflow dashboard export bench-exports bench-ingestion

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(CURDIR)/.tools/bin/uv:
	@echo "uv not found on PATH: installing it from PyPI into .tools/"
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check 'uv>=0.5'

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

install: .venv/.synced ## Create or update the environment (.venv) from uv.lock

demo: install ## Run the platform locally: embedded PostgreSQL, generator, loader, dbt, Airflow
	$(RUN) mdp demo
	$(RUN) mdp dashboard --background

test: install lint ## Lint, type-check and run every test
	$(RUN) pytest

lint: install ## ruff (lint + format check) and mypy
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy mdp infra stacks source_generator ingestion
	$(RUN) sqlfluff lint transform/models --processes 2

fmt: install ## Format the code and apply safe lint fixes
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

ROWS ?= 1000000
.PHONY: bench-generator
bench-generator: install ## Generator rows/s vs bare COPY of the same rows (ROWS=1000000)
	$(RUN) python -m source_generator.bench --rows $(ROWS)

bench-ingestion: install ## Benchmark the loader: 1M-row full + 1% incremental sync vs bare COPY and dlt
	$(RUN) python -m ingestion.bench

clean: ## Stop the embedded PostgreSQL and delete all local state (.local/)
	-$(RUN) mdp stop 2>/dev/null
	-$(RUN) mdp dashboard --stop 2>/dev/null
	rm -rf .local

dashboard: install ## Serve the finance dashboard on 127.0.0.1 (PORT=8501)
	$(RUN) mdp dashboard --port $(or $(PORT),8501)

export: install ## Export fct_payments and the marts as Hive-partitioned zstd Parquet (.local/exports/)
	$(RUN) mdp export

bench-exports: install ## Parquet export vs CSV of the same data: size, one-column read, one-partition read
	$(RUN) python -m exports.bench

airflow: install ## Airflow UI + scheduler on http://127.0.0.1:8080 (AIRFLOW_PORT), state in .local/airflow
	$(RUN) python -m orchestration.include.standalone

.PHONY: transform dbt-manifest bench-transform
transform: install ## Build the dbt project on the local warehouse and print the finance marts
	$(RUN) mdp transform

dbt-manifest: install ## Write transform/target/manifest.json (dbt parse) for Airflow/Cosmos
	$(RUN) mdp transform manifest

bench-transform: install ## Time a full dbt build over ~10M payments, then an incremental one
	$(RUN) python transform/scripts/bench.py
