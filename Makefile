# quant-platform: `make run` materializes the sample window on embedded stores; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The same default as the CLI, so `make ui` shows what a plain `quant-platform run` wrote.
export QP_HOME ?= $(HOME)/.quant-platform
export DAGSTER_HOME ?= $(QP_HOME)/dagster
START ?= 2024-08-01
END ?= 2024-10-31
SYMBOLS ?= 50

.PHONY: install run test ui lint format bench clean clean-data services

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

install: $(BIN)/.installed $(DAGSTER_HOME)/dagster.yaml

run: install  ## Materialize the whole asset graph for the sample window on the embedded stores
	$(BIN)/quant-platform run --start $(START) --end $(END) --symbols $(SYMBOLS) --chunk 65

test: install services  ## Run the test suite against Redis, MariaDB and PostgreSQL on loopback
	$(BIN)/python -m pytest

ui: install  ## Open the Dagster UI on http://127.0.0.1:3000
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

lint: install
	$(BIN)/ruff check quant_platform tests benchmarks
	$(BIN)/ruff format --check quant_platform tests benchmarks

format: install
	$(BIN)/ruff format quant_platform tests benchmarks
	$(BIN)/ruff check --fix quant_platform tests benchmarks

bench: install
	$(BIN)/python benchmarks/backtest.py
	$(BIN)/python benchmarks/storage.py

services:  ## Start Redis, MariaDB and PostgreSQL on loopback if needed and create the test databases
	bash .ci/services.sh

clean:  ## Remove the virtualenv and caches (keeps your data under QP_HOME)
	rm -rf $(VENV) .pytest_cache .ruff_cache

clean-data:  ## Delete the embedded stores and the Dagster instance under QP_HOME
	rm -rf $(QP_HOME)
