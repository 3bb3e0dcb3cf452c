# The two commands of the README: `make up` (the whole system with demo data) and `make test`.
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
STATE := deploy/local/state
TEST_STATE := deploy/local/state-test
STACK := $(UV) run --frozen python deploy/local/stack.py
DEMO_REFERRALS ?= 300
DEMO_TRAININGS ?= 20
# Every test but the heavy fault scenarios (several JVMs), which `make faults` runs.
PYTEST_ARGS ?= -m 'not heavy'

.PHONY: help install up demo rebuild down status test test-only lint fmt faults bench

help:
	@echo "make up      start Kafka, FerretDB, Keycloak and the services with demo data"
	@echo "make test    start a throw-away stack, run lint and every test, stop it"
	@echo "make down    stop what make up started"
	@echo "make demo    load the brochure's history to Sep 30, 2018 (43,431 referrals, 836 trainings)"
	@echo "make rebuild rebuild the reporting views from the topics while they keep serving"
	@echo "make lint    ruff, mypy --strict, import-linter"
	@echo "make faults  the fault suite at full size: kills, floods, a three-broker cluster"

$(UV):
	@echo "[make] installing uv $(UV_VERSION) from PyPI"
	python3 -m pip install --quiet --user "uv==$(UV_VERSION)"

install: $(UV)
	@$(UV) sync --frozen --quiet
	@$(STACK) install

up: install
	@$(STACK) up --services
	@# The sample loads once per state folder, so a second `make up` changes nothing.
	@test -f $(STATE)/demo-loaded || { $(UV) run --frozen python deploy/local/demo.py \
		--referrals $(DEMO_REFERRALS) --trainings $(DEMO_TRAININGS) --wait \
		&& touch $(STATE)/demo-loaded; }
	@$(UV) run --frozen python deploy/local/urls.py

demo: install
	@$(STACK) up --services
	@$(UV) run --frozen python deploy/local/demo.py --brochure --wait

rebuild: install
	@$(STACK) rebuild

down:
	@if [ -x "$(UV)" ]; then $(STACK) down; else echo "nothing to stop"; fi

status:
	@$(STACK) status

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy
	$(UV) run --frozen lint-imports

fmt:
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

# A fresh stack on free ports for every run, stopped whatever the outcome. The browser and PDF
# tools only the tests use are installed here, not for `make up`.
test: install lint
	@$(STACK) install --for-tests
	@bash deploy/local/run-tests.sh "$(TEST_STATE)" $(PYTEST_ARGS)

# The fault suite at the issue's full sizes, the three-broker cluster included (~10 minutes).
faults: install
	@CMHL_FAULTS_FULL=1 bash deploy/local/run-tests.sh "$(TEST_STATE)" -s tests/faults

# Every benchmark on a stack of its own, sized for a 2-core machine (< 15 min); see docs/benchmarks.md.
bench: install
	@bash bench/run.sh
