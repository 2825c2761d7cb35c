# LeviBot Stream — one entry point for a fresh machine.
#   make run    the main job on its embedded default (no services needed)
#   make test   installs everything, starts Kafka and PostgreSQL, runs the whole test suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export LEVIBOT_VAR ?= $(CURDIR)/var

.PHONY: help venv tools lint run test test-fast bench rl-experiment soak services-up services-down services-status topics schemas-export docs clean

help:
	@echo "make run            replay the bundled BTC/ETH history through the flow (embedded, no services)"
	@echo "make test           venv + services + full test suite (fails on any skipped test)"
	@echo "make bench          benchmarks; results go to docs/performance.md by hand"
	@echo "make rl-experiment  PPO position sizing walk-forward against the rule-based sizing (docs/models.md)"
	@echo "make soak           30-minute live soak + webhook load (SOAK_MINUTES=3 for a quick one)"
	@echo "make services-up    start Kafka and PostgreSQL (idempotent); services-down stops them"

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

# promtool and the Prometheus server, kubeconform with offline Kubernetes schemas, the docker compose plugin, vegeta
# (the load generator of benchmarks/api.py)
tools: $(STAMP)
	scripts/install_tools.sh

docs: $(STAMP)
	$(PY) scripts/gen_docs.py

run: $(STAMP)
	$(VENV)/bin/levibot run

services-up: $(STAMP)
	scripts/services.sh up all

services-down:
	scripts/services.sh down all

services-status:
	scripts/services.sh status all

topics: services-up
	$(VENV)/bin/levibot topics create

schemas-export: $(STAMP)
	$(PY) scripts/export_jsonschema.py

# The whole suite against real services. LEVIBOT_REQUIRE_SERVICES turns any skip into a failure.
# TEST_WORKERS pytest-xdist processes (most tests wait on subprocesses and brokers, so more than the 2 cores pay off);
# one test module per worker at a time (--dist loadfile: a module's fixtures stay in one process), the slowest
# modules first (tests/conftest.py, SLOWEST_FIRST). TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= 4
test: services-up tools lint
	LEVIBOT_REQUIRE_SERVICES=1 $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile \
		--no-loadscope-reorder $(PYTEST_ARGS)

# The lint gate (pyproject.toml [tool.ruff] and [tool.mypy]): a finding, an unformatted file or a type error fails
# make test (`$(VENV)/bin/ruff format .` formats the tree).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Pure tests only (no services): quick feedback while editing.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not kafka and not postgres and not slow" $(PYTEST_ARGS)

bench: services-up tools
	$(PY) -m benchmarks $(BENCH_ARGS)

# the RL sizing experiment (issue 17): PPO in JAX + optax on a gymnasium environment over the features, walk-forward
# after costs against the rule-based sizing, three seeds (about 3 minutes); the `rl` extra is also in `test`
rl-experiment: $(STAMP)
	$(PY) -m flows.rl_experiment $(RL_ARGS)

# not part of `make test`: a live run at a fixed tick rate for SOAK_MINUTES (default 30), then the webhook at 1,000
# requests/s for 30 s; figures and a chart under var/soak/ (scripts/soak.py)
soak: services-up
	SOAK_MINUTES=$(SOAK_MINUTES) $(PY) scripts/soak.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
