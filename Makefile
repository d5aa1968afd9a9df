# civicgrid: the entry points. `make up` runs the system, `make test` tests it; both do all
# set-up on a fresh machine (Python 3.11+, a JDK 17+ and Maven, Node.js 20+ with npm).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STACK := $(PY) deploy/local/localstack.py
SERVICE_DIRS := $(wildcard services/*/pyproject.toml)

.PHONY: help setup chromium up down status logs clean demo test test-unit bench load k8s psql

help:
	@echo "make up      start PostgreSQL, Kafka and every service (idempotent)"
	@echo "make test    set up, start the stack and run every test"
	@echo "make test-unit  the unit layer alone: nothing started, under a minute"
	@echo "make down    stop everything;  make clean  also delete the data"
	@echo "make demo    a scripted day of the demo district through the public APIs"
	@echo "make bench   benchmarks side by side with their peers -> load-tests/results/latest.json"
	@echo "make load    the grid evening peak: a 50,000-grid city's daily reports against one grid process"
	@echo "make logs    the logs of every process"
	@echo "make psql    psql on the stack's PostgreSQL (DB=intake|approval|statistics; ARGS='-c \"...\"')"

# The virtualenv is rebuilt when a dependency list changes.
$(VENV)/.installed: constraints.txt requirements-dev.txt libs/common/pyproject.toml $(SERVICE_DIRS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -r requirements-dev.txt -e libs/common $(foreach s,$(SERVICE_DIRS),-e $(dir $(s)))
	touch $@

# The npm packages of the TypeScript client check (tests/typescript_client), as its lock pins them.
TS_CLIENT := tests/typescript_client
$(TS_CLIENT)/node_modules/.installed: $(TS_CLIENT)/package-lock.json
	npm ci --prefix $(TS_CLIENT) --no-audit --no-fund --loglevel=error
	touch $@

# The web console the gateway serves at / (services/gateway/console): its npm packages as its
# lock pins them, and its build (dist/, git-ignored), made again when a source file changes.
CONSOLE := services/gateway/console
CONSOLE_SOURCES := $(shell find $(CONSOLE)/src -type f 2>/dev/null) $(CONSOLE)/index.html $(CONSOLE)/vite.config.js
$(CONSOLE)/node_modules/.installed: $(CONSOLE)/package-lock.json
	npm ci --prefix $(CONSOLE) --no-audit --no-fund --loglevel=error
	touch $@
# Built beside dist/ and swapped in: a running gateway never serves a half-written console (a
# page loaded before the swap reloads itself when a screen's chunk is gone: main.js).
$(CONSOLE)/dist/index.html: $(CONSOLE)/node_modules/.installed $(CONSOLE_SOURCES)
	rm -rf $(CONSOLE)/dist.next
	npm run --prefix $(CONSOLE) --silent build -- --logLevel warn --outDir dist.next
	rm -rf $(CONSOLE)/dist.old && { [ ! -d $(CONSOLE)/dist ] || mv $(CONSOLE)/dist $(CONSOLE)/dist.old; } && \
	  mv $(CONSOLE)/dist.next $(CONSOLE)/dist && rm -rf $(CONSOLE)/dist.old

# Debian's Chromium for the browser tests (Playwright drives it: its own browser downloads are
# not reachable from here), and a CJK font so that its screenshots of the console show Chinese
# rather than empty boxes. Installed once with apt, as root or through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BROWSER_PACKAGES := chromium fonts-wqy-microhei
chromium:
	@{ command -v chromium && fc-list :lang=zh | grep -q . ; } > /dev/null 2>&1 || { \
	  echo "installing Debian's $(BROWSER_PACKAGES) for the browser tests"; \
	  $(SUDO) apt-get install -y -q $(BROWSER_PACKAGES) > /dev/null || { $(SUDO) apt-get update -q > /dev/null && \
	  $(SUDO) apt-get install -y -q $(BROWSER_PACKAGES) > /dev/null; }; }

setup: $(VENV)/.installed $(TS_CLIENT)/node_modules/.installed $(CONSOLE)/dist/index.html chromium

up: setup
	$(STACK) up

down:
	@if [ -x $(PY) ]; then $(STACK) down; fi

status: setup
	$(STACK) status

logs: setup
	$(STACK) logs

# The stack's PostgreSQL with its own psql (a system psql older than the server cannot list databases).
DB ?=
ARGS ?=
psql: setup
	$(STACK) psql $(if $(DB),--db $(DB)) -- $(ARGS)

clean: down
	rm -rf .local

demo: up
	$(PY) deploy/local/demo.py

test: up
	$(PY) -m pytest

# The unit layer: nothing started, no socket opened (conftest.py refuses them); well under a minute.
test-unit: setup
	$(PY) -m pytest -n auto libs/common/tests/unit services/*/tests/unit tests/architecture tests/contract

bench: up
	$(PY) load-tests/run.py

# The load scenario: the evening peak of daily reports of a 50,000-grid city against one grid
# process on loopback -> load-tests/results/grid_evening_peak.json (LOAD_ARGS='--reports 5000',
# '--rate 100', '--duration 120'; load-tests/grid_evening_peak.py --help).
LOAD_ARGS ?=
load: up
	$(PY) load-tests/grid_evening_peak.py $(LOAD_ARGS)
	$(PY) load-tests/webhook_fanout.py

# Regenerate deploy/k8s from contracts/asyncapi.yaml and services/ (a test checks they agree).
k8s: setup
	$(PY) deploy/gen_k8s.py
