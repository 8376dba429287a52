# RoleWarden. A newcomer needs two commands: `make demo` and `make test`. Each sets itself up.
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
export AWS_EC2_METADATA_DISABLED := true

.PHONY: setup test unit functional lint build validate demo bench chaos clean

setup: $(STAMP)

$(STAMP): requirements-dev.txt layers/core/requirements.txt pyproject.toml
	@PY=$$(scripts/find-python313) || exit 1; \
	  if [ ! -x $(VENV)/bin/python ] || ! $(VENV)/bin/python -c 'import sys; assert sys.version_info[:2]==(3,13)' 2>/dev/null; then \
	    rm -rf $(VENV); echo "creating $(VENV) with $$PY"; $$PY -m venv $(VENV); fi
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check layers functions local tests bench
	$(VENV)/bin/mypy
	$(MAKE) --no-print-directory validate

validate: setup
	sam validate --lint --template template.yaml

build: validate
	sam build --template template.yaml

test: lint
	$(VENV)/bin/pytest -q -p no:cacheprovider

unit: setup
	$(VENV)/bin/pytest -q tests/unit

functional: setup
	$(VENV)/bin/pytest -q tests/functional

demo: setup
	$(VENV)/bin/python -m rwlocal.demo

bench: setup
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)

chaos: setup
	$(VENV)/bin/python -m rwlocal.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
