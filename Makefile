# Quartet: the front door. `make up` runs the suite, `make test` tests it.
#
# With a Docker engine that answers (`docker info`) and compose, `up`/`down`/`ps`/`logs`
# use compose.yaml. Without one they run local processes through scripts/suite/.
# Force either with MODE=docker or MODE=local.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# PYTHON picks the interpreter .venv is built on (3.11, 3.12 or 3.13; e.g.
# PYTHON=/root/.pyenv/versions/3.13.0/bin/python3); VENV another venv folder (VENV=.venv-3.13).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# One stamp per interpreter version: another PYTHON finds no stamp, and scripts/lockfile.py
# rebuilds the venv when the interpreter in it is not PYTHON's version.
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)
STAMP := $(VENV)/.quartet-installed-$(PYTHON_VERSION)
MODE ?= auto
PYTEST_ARGS ?=

# scripts/suite/ needs only the standard library for down/ps/logs: use the venv if it exists.
# QUARTET_PYTHON: the processes it starts run on this venv's interpreter (VENV=... included).
SUITE = $(if $(wildcard $(PY)),QUARTET_PYTHON=$(abspath $(PY)) $(PY),$(PYTHON)) -m scripts.suite
VENV_SUITE = QUARTET_PYTHON=$(abspath $(PY)) $(PY) -m scripts.suite
DOCKER_ANSWERS = command -v docker >/dev/null 2>&1 && timeout 15 docker info >/dev/null 2>&1 \
	&& docker compose version >/dev/null 2>&1
# compose.yaml requires REPORTS_WORKER_CLIENT_SECRET and SIGNING_KEK; scripts/suite/ keeps them per checkout.
COMPOSE = docker compose --env-file .run/secrets.env
USE_DOCKER = { [ "$(MODE)" = docker ] || { [ "$(MODE)" = auto ] && $(DOCKER_ANSWERS); }; }

.PHONY: help bootstrap venv lock up down restart ps logs infra test test-compose lint fmt typecheck bench clean distclean seed dev

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

bootstrap: ## install missing Debian packages (venv, PostgreSQL, RabbitMQ, chromium, wrk, fonts); start the servers
	@$(PYTHON) -m scripts.bootstrap

# The venv is (re)built when missing, when PYTHON's version has no stamp, or when pyproject.toml /
# uv.lock are newer than the stamp: everything from uv.lock with hashes required (scripts/lockfile.py).
$(STAMP): pyproject.toml uv.lock | bootstrap
	@test -n "$(PYTHON_VERSION)" || { echo "error: PYTHON=$(PYTHON) does not run"; exit 2; }
	@rm -f $(VENV)/.quartet-installed*
	@$(PYTHON) -m scripts.lockfile venv --venv $(VENV)
	@touch $@

venv: $(STAMP) ## create .venv on PYTHON and install everything from uv.lock, hashes required

lock: ## re-resolve uv.lock from pyproject.toml (UPGRADE=1: newest allowed releases), then rebuild .venv
	@$(PYTHON) -m scripts.lockfile lock --venv $(VENV) $(if $(filter-out 0,$(UPGRADE)),--upgrade)
	@$(MAKE) -s --no-print-directory venv

up: ## start the whole suite (idempotent) and print its URLs
	@if $(USE_DOCKER); then \
		$(PYTHON) -m scripts.suite secrets >/dev/null && echo "==> docker compose up -d --build --wait" && \
		$(COMPOSE) up -d --build --wait; \
	else \
		$(MAKE) -s --no-print-directory bootstrap venv && $(VENV_SUITE) up; \
	fi
	@if [ -n "$(SEED)" ] && [ "$(SEED)" != 0 ]; then $(MAKE) -s --no-print-directory seed; fi

seed: venv ## demo account + a month of todos + 3 reports (idempotent; needs `make up`, or `make up SEED=1`)
	@if $(USE_DOCKER); then \
		$(PY) -m scripts.seed --todos-command "$(COMPOSE) exec -T todos python -m services.todos"; \
	else QUARTET_PYTHON=$(abspath $(PY)) $(PY) -m scripts.seed; fi

dev: bootstrap venv ## the local suite, each process restarted when its code changes (Ctrl-C stops it)
	@QUARTET_PYTHON=$(abspath $(PY)) $(PY) -m scripts.dev

down: ## stop what `make up` started (PostgreSQL and RabbitMQ keep running)
	@$(SUITE) down
	@if [ "$(MODE)" != local ] && $(DOCKER_ANSWERS); then $(COMPOSE) down; fi

restart: ## rolling restart, each instance drained first (SERVICE=todos; default: every service but the gateway)
	@if $(USE_DOCKER); then $(COMPOSE) restart $(SERVICE); else $(SUITE) restart $(SERVICE); fi

ps: ## each process, its pid, port and readiness
	@if $(USE_DOCKER); then $(COMPOSE) ps; else $(SUITE) ps; fi

logs: ## tail the logs (FOLLOW=1 to follow, N=200 for more lines)
	@if $(USE_DOCKER); then $(COMPOSE) logs --tail $${N:-40} $(if $(FOLLOW),-f); \
	else $(SUITE) logs -n $${N:-40} $(if $(FOLLOW),-f); fi

infra: venv ## make sure PostgreSQL and RabbitMQ answer on localhost (start them if installed)
	@$(VENV_SUITE) infra

test: bootstrap venv lint ## ruff, mypy, import-linter, then pytest against real PostgreSQL and RabbitMQ
	@echo "==> pytest $(PYTEST_ARGS)"
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Binds the suite's standard ports: run it alone (CI does, after make test).
test-compose: venv ## compose.yaml for real: engine (installed/started if none), images, up --wait, a journey, down -v
	@$(PY) -m scripts.compose_test

lint: venv ## uv.lock agrees with pyproject.toml, ruff check, ruff format --check, mypy, lint-imports, deptry
	@echo "==> uv lock --locked (pyproject.toml and uv.lock agree)"
	@$(PY) -m scripts.lockfile check --venv $(VENV)
	@echo "==> ruff check"
	$(VENV)/bin/ruff check .
	@echo "==> ruff format --check"
	$(VENV)/bin/ruff format --check .
	@echo "==> mypy"
	$(VENV)/bin/mypy
	@echo "==> lint-imports"
	$(VENV)/bin/lint-imports
	@echo "==> deptry (every third-party import is a declared dependency)"
	$(VENV)/bin/deptry .

typecheck: venv ## mypy only
	$(VENV)/bin/mypy

fmt: venv ## format and fix what ruff can
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: bootstrap venv ## bring the suite up if needed, then run the load scenarios (bench/run.py; BENCH_ARGS=...)
	@if [ -f bench/run.py ]; then $(MAKE) -s --no-print-directory up && $(PY) -m bench.run $(BENCH_ARGS); \
	else echo "no benchmarks yet (bench/run.py comes later)"; fi

clean: ## stop the local suite, remove .run/ and caches (keeps .venv)
	@$(SUITE) down
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info tests/artifacts
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
