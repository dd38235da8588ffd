# Two commands do all set-up on a fresh machine with Python 3.11:
#   make demo   build .venv/ if needed, then run the main job on the embedded default
#   make test   build .venv/ and .venv-pi/ if needed, then run ruff and the whole test suite
#               (the Pi0 / Pi0.5 / Pi0-FAST tests run in .venv-pi/)
# Both reuse an existing environment; it is rebuilt only when pyproject.toml changes.
# make setup-pi alone builds .venv-pi/: Pi-family policies need openpi's patched transformers,
# which cannot share .venv/ with the transformers the other VLAs need.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
CHECK_PYTHON := $(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "lerobot-cknna needs Python 3.11 (lerobot 0.4.4); set PYTHON=/path/to/python3.11"'
PI_VENV := .venv-pi
PI_STAMP := $(PI_VENV)/.installed
PI_REQUIREMENTS := $(PYTHON) tools/pi_env_requirements.py
# What the Pi family is tested by: the parametrized tests cover the types this environment runs.
PI_TESTS := tests/test_capture.py tests/test_tiny_policies.py tests/test_pi_family.py

.PHONY: setup setup-pi demo test bench

$(STAMP): pyproject.toml
	@$(CHECK_PYTHON)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test,groot]"
	touch $(STAMP)

setup: $(STAMP)

$(PI_STAMP): pyproject.toml tools/pi_env_requirements.py
	@$(CHECK_PYTHON)
	test -x $(PI_VENV)/bin/python || $(PYTHON) -m venv $(PI_VENV)
	$(PI_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PI_REQUIREMENTS) > $(PI_VENV)/requirements.txt
	$(PI_REQUIREMENTS) --no-deps > $(PI_VENV)/no-deps.txt
	$(PI_VENV)/bin/python -m pip install --quiet -r $(PI_VENV)/requirements.txt
	$(PI_VENV)/bin/python -m pip install --quiet --no-deps -r $(PI_VENV)/no-deps.txt
	$(PI_VENV)/bin/python tools/pi_env_requirements.py --their-dependencies > $(PI_VENV)/their-dependencies.txt
	$(PI_VENV)/bin/python -m pip install --quiet -r $(PI_VENV)/their-dependencies.txt
	$(PI_VENV)/bin/python -m pip install --quiet --no-deps -e .
	$(PI_VENV)/bin/python -c 'import transformers.models.siglip.check'
	touch $(PI_STAMP)

setup-pi: $(PI_STAMP)

demo: setup
	$(VENV)/bin/lerobot-cknna-demo

test: setup setup-pi
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest
	$(PI_VENV)/bin/pytest $(PI_TESTS)

bench: setup setup-pi
	$(VENV)/bin/python benchmarks/bench_capture.py
	$(PI_VENV)/bin/python benchmarks/bench_capture.py
	$(VENV)/bin/python benchmarks/bench_metrics.py
	$(VENV)/bin/python benchmarks/bench_simulation.py
