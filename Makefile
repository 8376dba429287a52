# RoleWarden. A newcomer needs two commands: `make demo` and `make test`. Each sets itself up.
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed
# checkov pins packages that clash with aws-sam-cli's, so it gets a virtual environment of its own
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV_VERSION := 3.3.30
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
export AWS_EC2_METADATA_DISABLED := true

.PHONY: setup test unit functional lint build validate security demo bench chaos clean

setup: $(STAMP)

$(STAMP): requirements-dev.txt layers/core/requirements.txt pyproject.toml
	@PY=$$(scripts/find-python313) || exit 1; \
	  if [ ! -x $(VENV)/bin/python ] || ! $(VENV)/bin/python -c 'import sys; assert sys.version_info[:2]==(3,13)' 2>/dev/null; then \
	    rm -rf $(VENV); echo "creating $(VENV) with $$PY"; $$PY -m venv $(VENV); fi
	$(VENV)/bin/pip install -qq --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/pip install -qq --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

$(CHECKOV_STAMP): $(STAMP)
	@rm -rf $(CHECKOV_VENV); $(VENV)/bin/python -c 'import sys; print(sys.base_prefix)' >/dev/null
	$$($(VENV)/bin/python -c 'import sys, os; print(os.path.join(sys.base_prefix, "bin", "python3"))') -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -qq --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	@touch $(CHECKOV_STAMP)

LINT_DIRS := layers functions local tests $(wildcard bench)

lint: setup
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports  # the layering contracts of pyproject.toml [tool.importlinter]
	$(MAKE) --no-print-directory validate security

validate: setup
	sam validate --lint --template template.yaml
	$(VENV)/bin/cfn-lint forwarder.yaml
	$(VENV)/bin/cfn-lint member.yaml

# Every failed checkov check is fixed, or skipped in the template with a written reason.
security: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
	  -f template.yaml -f forwarder.yaml -f member.yaml

build: validate
	sam build --template template.yaml

# Branch coverage of the package (configured in pyproject.toml, [tool.coverage.*]); the build fails below
# COVERAGE_FLOOR percent (coverage.py's total: lines and branches). Issue 11's goal is 90 for branches; after
# the refactor the total was 96.5% and branches alone 94.2% (1,900 of 2,018; 2026-11-29). Raise the floor as
# tests land; never lower it to make a change pass.
COVERAGE_FLOOR := 95
test: lint
	$(VENV)/bin/pytest -q -p no:cacheprovider --cov=rolewarden --cov-branch --cov-report=term \
	  --cov-fail-under=$(COVERAGE_FLOOR)

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
	rm -rf $(VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage
