# Flowstate: `make run` starts the product, `make test` checks it. Both set up the toolchain first.
#
# Set-up is incremental: uv is bootstrapped into .tools/ only if missing, and `uv sync` runs only
# when pyproject.toml or uv.lock changed since the last sync (stamp file inside .venv).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.flowstate-synced

.PHONY: help run test lint typecheck sync doctor bench chromium

help:
	@echo "make run    set up, then start Flowstate (embedded services unless configured) on FLOWSTATE_PORT"
	@echo "make test   set up, then ruff, mypy, import-linter and pytest"
	@echo "make lint   ruff and import-linter;  make typecheck: mypy only;  make doctor: check the services"
	@echo "make bench  run every bench/bench_*.py with its defaults"
	@echo "make sync   install/update the locked dependencies into .venv"

run: $(STAMP)
	$(VENV)/bin/flowstate serve

test: $(STAMP) chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy .

doctor: $(STAMP)
	$(VENV)/bin/flowstate doctor

bench: $(STAMP)
	@set -e; for script in bench/bench_*.py; do echo ">>> $$script"; $(VENV)/bin/python $$script; done

sync: $(STAMP)

# The web workspace's end-to-end tests (tests/web) drive Debian's Chromium through Playwright (no
# browser download); they fail without it, so `make test` installs it when it is missing.
chromium:
	@command -v chromium >/dev/null || { \
	  echo ">>> installing Debian's chromium and chromium-driver (the workspace's browser tests)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y chromium chromium-driver \
	  || { $$SUDO apt-get update && $$SUDO apt-get install -y chromium chromium-driver; }; }

$(UV):
	@echo ">>> bootstrapping uv $(UV_VERSION) into $(TOOLS)/"
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --disable-pip-version-check --quiet uv==$(UV_VERSION)

# --compile-bytecode: the dependencies' .pyc files are written once, here. Where
# PYTHONDONTWRITEBYTECODE is set (container images often set it) Python never writes them, and
# every process would compile crewai, langgraph, fastapi, ... from source at start: 17.7 s to
# import them on 2 cores, against 9.1 s with the .pyc files.
$(STAMP): pyproject.toml uv.lock | $(UV)
	@echo ">>> installing the locked dependencies into $(VENV)/ (uv sync --frozen)"
	@echo ">>> on a fresh machine this compiles llama-cpp-python (llama.cpp) from source:"
	@echo ">>> about 4 to 9 minutes on 2 cores, during which uv shows 'Building llama-cpp-python'."
	$(UV) sync --frozen --compile-bytecode
	@touch $@
