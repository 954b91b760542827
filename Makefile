# Every gate runs the same way here and in CI. Set-up is part of each target, so a fresh clone needs nothing else.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
# The venv first on PATH: cdk.json's `python3 app.py` then runs with the project's dependencies.
export PATH := $(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true
# Synthesis never needs AWS; make sure nothing from the caller's shell makes it try.
unexport AWS_PROFILE

.PHONY: help setup lint test synth cfn-lint cost clean
.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Linux wheels for the Lambda and worker assets (the only download synthesis needs), cached in build/wheelhouse.
build/wheelhouse/.prefetched: $(VENV)/.installed cdk.json stacks/prefetch_wheels.py lambdas/video_processor/requirements.txt worker/requirements.txt
	python -m stacks.prefetch_wheels
	touch $@

setup: $(VENV)/.installed node_modules/.installed build/wheelhouse/.prefetched ## Create .venv, node_modules, wheels (done by every target)

lint: setup ## ruff + strict mypy on the runtime code
	ruff check .
	ruff format --check .
	mypy

test: lint ## Lint, then every test (unit, moto, moto server, deploy rehearsal)
	pytest

synth: setup ## cdk synth every stack into cdk.out (cdk-nag on), then cfn-lint the templates
	rm -rf cdk.out
	cdk synth --quiet
	$(MAKE) --no-print-directory cfn-lint

demo: setup ## Deploy every stack into moto server with the pinned CDK CLI, run videos through both paths, destroy
	python -m demo

cfn-lint: setup ## cfn-lint every template in cdk.out
	cfn-lint cdk.out/*.template.json

cost: setup ## Monthly cost of a workload, e.g. make cost ARGS="--videos-per-day 1000 --size-mb 50 --duration-s 60"
	python -m cost $(ARGS)

clean: ## Remove build output (keeps .venv and node_modules)
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache
