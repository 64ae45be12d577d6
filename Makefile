# sambus: `make demo` runs the demo, `make test` runs everything CI runs. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sambus-installed

.PHONY: help install prerequisites fhir-validator demo test lint format typecheck pytest kafka-up kafka-down kafka-reset kafka-fetch clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

prerequisites: ## Check (and, as root on Debian, install) Java 17+ and Maven for the local Kafka
	@bash deploy/kafka/prerequisites.sh

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "sambus needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP) prerequisites ## Make the virtualenv and fetch the Kafka broker
	$(BIN)/sambus kafka fetch

fhir-validator: ## Build the offline FHIR validator (HAPI FHIR from Maven Central; needs a JDK 17+ and Maven)
	@bash deploy/fhir-validator/prerequisites.sh
	bash deploy/fhir-validator/validate.sh --build

demo: install ## Run the demo (starts and stops a local Kafka broker)
	$(BIN)/sambus demo

lint: $(STAMP) ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Format and fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP) ## mypy, strict, over the product and bench/
	$(BIN)/mypy

pytest: install fhir-validator ## The tests, including those on a real Kafka broker, a real PostgreSQL server and Chromium
	@bash deploy/browser/prerequisites.sh
	@bash deploy/monitoring/prerequisites.sh
	@bash deploy/image/prerequisites.sh
	bash deploy/postgres/with-postgres.sh $(BIN)/pytest -m "not unfinished"

test: lint typecheck pytest ## Everything CI runs: ruff, mypy and every test

kafka-up: install ## Start the local broker on 127.0.0.1:19092 and wait until it answers
	$(BIN)/sambus kafka up

kafka-down: $(STAMP) ## Stop the local broker; its data stays for the next kafka-up
	$(BIN)/sambus kafka down

kafka-reset: $(STAMP) ## Stop the local broker and delete its data
	$(BIN)/sambus kafka reset

clean: ## Remove the virtualenv, caches, the downloaded broker and the built validator
	rm -rf $(VENV) deploy/kafka/lib deploy/fhir-validator/lib deploy/fhir-validator/target .pytest_cache .mypy_cache .ruff_cache .hypothesis .sambus
