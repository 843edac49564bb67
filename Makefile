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
# Per-test ceiling so one hung test cannot eat CI's whole 90 minutes.
PYTEST_TIMEOUT ?= 900
PYTEST_ARGS ?=
# wildcard: benchmarks/ may not exist yet, and ruff fails on a missing path.
CODE := $(wildcard hubkit tests benchmarks)
BENCHMARKS := $(wildcard benchmarks/bench_*.py)
APP_NOTEBOOK := notebooks/04-margin-scenarios.ipynb
# Voila's own default port; the app listens on loopback only (put a proxy in front to share it).
APP_PORT ?= 8866
# JupyterLab refuses to start as root unless told; dev boxes and CI here run as root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: help venv demo test soak lint format lab app bench clean

help: ## Show this list of commands
	@echo "Usage: make <target>"
	@echo
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z_-]+:.*?## / {printf "  %-8s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

venv: $(STAMP) ## Create .venv and install hubkit with its dev, postgres and scale extras

# Re-runs only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar off \
		-e '.[$(EXTRAS)]'
	touch $(STAMP)

demo: venv ## Init the local SQLite store, import the price catalog, preview a bulk update
	$(BIN)/python -m hubkit demo

test: venv ## Install PostgreSQL + chromium if missing, then run the whole test suite
	bash scripts/install-system-deps.sh
	$(BIN)/python -m pytest --timeout=$(PYTEST_TIMEOUT) $(PYTEST_ARGS)

# `make soak N=5 SOAK_ARGS="-k drop --no-hog"`: rounds, and options for scripts/soak.py.
N ?= 20
SOAK_ARGS ?=

soak: venv ## Run the fault/lock/concurrency/browser/job tests N times (N=20) under CPU load
	bash scripts/install-system-deps.sh
	$(BIN)/python scripts/soak.py --count $(N) --timeout $(PYTEST_TIMEOUT) $(SOAK_ARGS)

lint: venv ## Check code style (ruff check + ruff format --check)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)

format: venv ## Reformat code and apply safe ruff fixes
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

lab: venv ## Open the notebooks in JupyterLab
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/

app: venv ## Serve the margin-scenarios notebook as a web app (Voila, code hidden, read-only)
	$(BIN)/voila $(APP_NOTEBOOK) --strip_sources=True --no-browser \
		--Voila.ip=127.0.0.1 --port=$(APP_PORT)

bench: venv ## Run every benchmarks/bench_*.py at full size (prints ratios)
	@if [ -z "$(BENCHMARKS)" ]; then echo "no benchmarks/bench_*.py yet"; fi
	@for script in $(BENCHMARKS); do \
		echo "== $$script"; \
		$(BIN)/python $$script; \
	done

clean: ## Remove caches and build output (keeps .venv, .hubkit/ data and reports/)
	rm -rf build dist .pytest_cache .ruff_cache .hypothesis ./*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
