# mdp: run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
# uv comes from PATH, or is installed from PyPI into .tools/ on first use.
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --frozen
# Test processes: each test file runs whole in one of them, the slowest files first.
TEST_WORKERS ?= 2
export AIRFLOW__API__HOST ?= 127.0.0.1

.PHONY: help install demo test lint fmt clean sync transform dbt-manifest airflow dashboard export \
	plan rehearse system-deps test-infra test-mwaa test-faults policy-pack-env bench-generator bench-ingestion bench-transform bench-exports bench-dag

help: ## List the targets
	@if [ -t 1 ]; then on=$$'\033[36m'; off=$$'\033[0m'; else on=; off=; fi; \
	awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %s%-16s%s %s\n", on, $$1, off, $$2}' $(MAKEFILE_LIST)

$(CURDIR)/.tools/bin/uv:
	@echo "uv not found on PATH: installing it from PyPI into .tools/"
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check 'uv>=0.5'

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

## ---- Run it -------------------------------------------------------------------------------
install: .venv/.synced ## Create or update the environment (.venv) from uv.lock

demo: install ## Run the whole pipeline locally through Airflow, then serve the dashboard
	@$(RUN) mdp demo

sync: install ## Load the local source into RAW (DuckDB) once
	$(RUN) mdp sync

transform: install ## Build the dbt project on the local warehouse and print the finance marts
	$(RUN) mdp transform

dbt-manifest: install ## Write transform/target/manifest.json (dbt parse) for Airflow/Cosmos
	$(RUN) mdp transform manifest

airflow: install ## Airflow UI + scheduler on http://127.0.0.1:8080 (AIRFLOW_PORT), state in .local/airflow
	$(RUN) python -m orchestration.include.standalone

dashboard: install ## Serve the finance dashboard on 127.0.0.1 (PORT=8501), or say where it already runs
	$(RUN) mdp dashboard --port $(or $(PORT),8501)

export: install ## Export fct_payments and the marts as Hive-partitioned zstd Parquet (.local/exports/)
	$(RUN) mdp export

STACK ?= dev
FORMAT ?= text
plan: install ## Credential-free plan of a stack: resources, policy violations, monthly cost (STACK=dev|prod FORMAT=text|markdown PLAN_OUT=file)
	$(RUN) mdp plan --stack $(STACK) --format $(FORMAT) $(if $(PLAN_OUT),--output $(PLAN_OUT))

rehearse: install ## Rehearse a stack on a local AWS emulator: apply it, boot its hosts, a table per host (STACK=dev|prod, WITH_CLOUD=1: a daily run too)
	$(RUN) mdp rehearse --stack $(STACK) $(if $(WITH_CLOUD),--with-cloud)

clean: ## Stop the local services and delete all local state (.local/)
	-$(RUN) mdp dashboard --stop 2>/dev/null
	-$(RUN) mdp stop 2>/dev/null
	rm -rf .local

## ---- Check it -----------------------------------------------------------------------------
test: install system-deps lint policy-pack-env ## Lint, type-check and run every test, then the planted-fault suite (TEST_WORKERS=2)
	$(RUN) pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
	$(MAKE) --no-print-directory test-faults

system-deps: ## Install the Debian packages the tests use (Chromium, cloud-init, jq, systemd-analyze)
	@bash scripts/system-deps.sh

lint: install ## ruff (lint + format check), import contracts, mypy, sqlfluff, actionlint
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports
	$(RUN) mypy core mdp infra stacks rehearsal source_generator ingestion transform
	$(RUN) sqlfluff lint transform/models --processes 2
	$(RUN) actionlint

fmt: install ## Format the code and apply safe lint fixes
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

test-faults: install policy-pack-env ## Plant a fault per guarantee in a temporary copy; each backing test must fail (FAULTS=all: the slow ones too)
	$(RUN) python -m tests.faults.run $(if $(filter all,$(FAULTS)),--all)

test-mwaa: install ## Only the cloud DAG's daily run on MWAA's Airflow version (dag.test, fake Airbyte, fakesnow; 3-6 min)
	$(RUN) pytest tests/orchestration/test_mwaa_airflow.py -m mwaa_run

test-infra: install ## Only the Pulumi program under mocks (both stacks), policy rules, Airbyte provider
	$(RUN) pytest tests/infra tests/ci

policy-pack-env: .venv-policy/.synced ## Create the policy pack's own environment (pulumi-policy needs protobuf 5)

.venv-policy/.synced: infra/policies/requirements.txt | $(UV)
	$(UV) venv --quiet --allow-existing --python 3.11 .venv-policy
	VIRTUAL_ENV=.venv-policy $(UV) pip install --quiet -r infra/policies/requirements.txt
	@touch $@

## ---- Measure it ---------------------------------------------------------------------------
ROWS ?= 1000000
bench-generator: install ## Generator rows/s vs bare COPY of the same rows (ROWS=1000000)
	$(RUN) python -m source_generator.bench --rows $(ROWS)

bench-ingestion: install ## Loader at 1M and 10M rows: full + incremental sync vs bare COPY (and dlt at 1M); .local/bench/ingestion.json
	$(RUN) python -m ingestion.bench

bench-transform: install ## dbt full + incremental build after one day, at 10M and 1M payments; .local/bench/transform.json
	$(RUN) python -m transform.bench

bench-dag: install ## One day under Airflow's scheduler (LocalExecutor) vs mdp sync + dbt build; .local/bench/dag.json
	$(RUN) python -m orchestration.bench

bench-exports: install ## Parquet export vs CSV of the same data: size, one-column read, one-partition read
	$(RUN) python -m exports.bench
