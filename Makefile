# hubkit — everyday commands. `make` (or `make help`) lists them.
# A fresh machine needs only python3 (3.11+) and make; `make venv` installs the rest.

.DEFAULT_GOAL := help
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Lives inside .venv: deleting the venv also forgets that it was installed.
STAMP := $(VENV)/.hubkit-installed
EXTRAS := dev,postgres,scale
COMMA := ,
# Every installed version is pinned, with hashes, in these files; `make lock` rewrites them.
LOCK := requirements/lock.txt
UV_LOCK := requirements/uv.txt
UV := $(BIN)/uv
LOWEST_VENV := .venv-lowest
# Per-test ceiling so one hung test cannot eat CI's whole 90 minutes.
PYTEST_TIMEOUT ?= 900
PYTEST_ARGS ?=
# wildcard: benchmarks/ may not exist yet, and ruff fails on a missing path.
CODE := $(wildcard hubkit tests benchmarks)
BENCHMARKS := $(wildcard benchmarks/bench_*.py)
# The finance web app: a folder of links to the read-only finance notebooks (04 scenarios,
# 07 monthly pack); Voila lists them and serves each without code, none of the others.
APP_DIR := jupyter/finance-app
# Voila's own default port; the app listens on loopback only (put a proxy in front to share it).
APP_PORT ?= 8866
# JupyterLab refuses to start as root unless told; dev boxes and CI here run as root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: help venv lock demo test test-lowest test-remote-hub soak lint format lab app \
	screenshots bench clean

help: ## Show this list of commands
	@echo "Usage: make <target>"
	@echo
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z_-]+:.*?## / {printf "  %-15s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

venv: $(STAMP) ## Create .venv with exactly the locked versions (requirements/lock.txt)

# Re-runs only when the lock or pyproject.toml is newer than the stamp. pip only bootstraps
# the pinned uv (hash-checked); uv then makes .venv exactly the lock (`pip sync` removes
# what the lock does not list) in a fraction of pip's time, and installs hubkit editable
# without build isolation, so even the build backend comes from the lock.
$(STAMP): $(LOCK) $(UV_LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar off -q \
		--require-hashes --no-deps -r $(UV_LOCK)
	$(UV) pip sync --python $(BIN)/python --require-hashes $(LOCK)
	$(UV) pip install --python $(BIN)/python --no-deps --no-build-isolation -e .
	@# .gitattributes names the filter; its command is this clone's, so it is set here
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git config filter.nbstripout.clean "'$(abspath $(BIN))/python' -m nbstripout --keep-id" && \
		git config filter.nbstripout.smudge cat && \
		git config filter.nbstripout.required true && \
		git config diff.ipynb.textconv "'$(abspath $(BIN))/python' -m nbstripout --keep-id -t"; \
	fi
	touch $(STAMP)

lock: ## Upgrade the lock on purpose: newest versions within pyproject.toml's bounds
	@test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install -q \
		--disable-pip-version-check --require-hashes --no-deps -r $(UV_LOCK); }
	$(UV) pip compile --upgrade --generate-hashes --custom-compile-command "make lock" \
		-o $(UV_LOCK) requirements/uv.in
	$(UV) pip compile --upgrade --generate-hashes --custom-compile-command "make lock" \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--extra $(subst $(COMMA), --extra ,$(EXTRAS)) \
		-o $(LOCK) pyproject.toml requirements/tools.in
	@echo "lock updated: review 'git diff requirements/', then 'make test' before committing"

demo: venv ## Init the local SQLite store, import the price catalog, preview a bulk update
	$(BIN)/python -m hubkit demo

test: venv ## Install PostgreSQL + chromium if missing, then run the whole test suite
	bash scripts/install-system-deps.sh
	$(BIN)/python -m pytest --timeout=$(PYTEST_TIMEOUT) $(PYTEST_ARGS)

test-lowest: venv ## The suite on the lowest versions pyproject.toml allows (keeps bounds honest)
	rm -rf $(LOWEST_VENV) && $(PYTHON) -m venv $(LOWEST_VENV)
	$(UV) pip compile -q --resolution lowest-direct --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --extra $(subst $(COMMA), --extra ,$(EXTRAS)) \
		-o $(LOWEST_VENV)/lowest.txt pyproject.toml requirements/tools.in
	$(UV) pip sync --python $(LOWEST_VENV)/bin/python $(LOWEST_VENV)/lowest.txt
	$(UV) pip install --python $(LOWEST_VENV)/bin/python --no-deps --no-build-isolation -e .
	bash scripts/install-system-deps.sh
	$(LOWEST_VENV)/bin/python -m pytest --timeout=$(PYTEST_TIMEOUT) $(PYTEST_ARGS)

# A second local hub without --test-faults stands in for a real gateway; PYTEST_ARGS go to
# each pytest run (e.g. PYTEST_ARGS="-k margin"). Against a real hub, see tests/README.md.
test-remote-hub: venv ## Count the hub contract tests against a stand-in for a real hub, both modes
	PYTHONPATH=$(CURDIR) $(BIN)/python scripts/remote_hub_contract.py $(PYTEST_ARGS)

# `make soak N=5 SOAK_ARGS="-k drop --no-hog"`: rounds, and options for scripts/soak.py
# (`--parallel 2`: two rounds at a time on top of the hog).
N ?= 20
SOAK_ARGS ?=

soak: venv ## Run the fault/lock/concurrency/browser/job tests N times (N=20) under CPU load
	bash scripts/install-system-deps.sh
	$(BIN)/python scripts/soak.py --count $(N) --timeout $(PYTEST_TIMEOUT) $(SOAK_ARGS)

# tests/test_lint.py runs these same checks, so the suite fails where `make lint` would.
lint: venv ## Check style, types and layers (ruff, mypy strict on hubkit/, import-linter)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy
	$(BIN)/lint-imports

format: venv ## Reformat code and apply safe ruff fixes
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

# The project's lab defaults (jupyter/labconfig: no news prompt, no update check) come
# first on Jupyter's config path.
JUPYTER_ENV := JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter

lab: venv ## Open the notebooks in JupyterLab (outputs stay out of git: nbstripout)
	$(JUPYTER_ENV) $(BIN)/jupyter lab $(ROOT_FLAG) notebooks/

app: venv ## Serve the finance notebooks (04 scenarios, 07 monthly pack) as a web app (Voila, read-only)
	$(JUPYTER_ENV) $(BIN)/voila $(APP_DIR) --strip_sources=True --no-browser \
		--Voila.ip=127.0.0.1 --port=$(APP_PORT)

screenshots: venv ## Regenerate the README's screenshots (JupyterLab and Voilà in chromium)
	bash scripts/install-system-deps.sh
	$(BIN)/python scripts/make_screenshots.py

bench: venv ## Run every benchmarks/bench_*.py at full size (prints ratios)
	@if [ -z "$(BENCHMARKS)" ]; then echo "no benchmarks/bench_*.py yet"; fi
	@for script in $(BENCHMARKS); do \
		echo "== $$script"; \
		$(BIN)/python $$script; \
	done

clean: ## Remove caches and build output (keeps .venv, .hubkit/ data and reports/)
	rm -rf build dist .pytest_cache .ruff_cache .mypy_cache .hypothesis ./*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
