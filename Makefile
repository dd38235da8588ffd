# Two commands do all set-up on a fresh machine with Python 3.11:
#   make demo   build .venv/ if needed, then run the main job on the embedded default
#   make test   build .venv/ if needed, then run ruff and the whole test suite
# Both reuse an existing environment; it is rebuilt only when pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "lerobot-cknna needs Python 3.11 (lerobot 0.4.4); set PYTHON=/path/to/python3.11"'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test,groot]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/lerobot-cknna-demo

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest

bench: setup
	$(VENV)/bin/python benchmarks/bench_capture.py
	$(VENV)/bin/python benchmarks/bench_metrics.py
	$(VENV)/bin/python benchmarks/bench_simulation.py
