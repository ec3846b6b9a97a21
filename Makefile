# The two commands of the README, plus helpers. Everything runs from the project's .venv.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: up test bench dashboard-docs chaos lint clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

## up: provision and run Kafka, PostgreSQL, gateway and worker in the foreground
up: $(STAMP)
	$(VENV)/bin/opsctl up

## test: provision what the tests need and run the whole suite on real services
test: $(STAMP)
	$(VENV)/bin/python -m devstack.provision
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy ops_common ingest_gateway stream_workers alert_agent ops_dashboard ops_client opsctl devstack chaos
	$(VENV)/bin/pytest

## bench: start a separate local stack, measure, write docs/benchmarks.md and .json
bench: $(STAMP)
	$(VENV)/bin/python -m devstack.provision
	$(VENV)/bin/python -m bench

## dashboard-docs: screenshots of /ops and its redraw time on 7 days x 50 series (docs/dashboard.md)
dashboard-docs: $(STAMP)
	$(VENV)/bin/python -m bench.dashboard

## chaos: inject real faults under load and write docs/reliability.md (the long fault suite)
chaos: $(STAMP)
	$(VENV)/bin/python -m devstack.provision
	$(VENV)/bin/python -m chaos

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy ops_common ingest_gateway stream_workers alert_agent ops_dashboard ops_client opsctl devstack chaos

clean:
	rm -rf .stack
