# Two commands do all set-up on a fresh machine:
#   make demo   build .venv/ if needed, then run the main job on the embedded default
#   make test   build .venv/ if needed, then run ruff and the whole test suite (what CI runs)
# Both reuse an existing environment; it is rebuilt only when pyproject.toml changes.
#
# lerobot 0.6.1 needs Python 3.12. PYTHON=/path/to/python3.12 picks one; otherwise the first
# Python 3.12 found: python3.12 or python3 on PATH, then pyenv's (its python3.12 shim answers only
# when pyenv is told to use 3.12, so the interpreter under $(pyenv root)/versions is asked directly).

VERSION_CHECK := import sys; sys.exit(sys.version_info[:2] != (3, 12))
CANDIDATES := python3.12 python3 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12 \
	$$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12
PYTHON ?= $(shell for p in $(CANDIDATES); do \
	"$$p" -c '$(VERSION_CHECK)' >/dev/null 2>&1 && { command -v "$$p" || echo "$$p"; } && break; done)
NO_PYTHON := No Python 3.12 found (lerobot 0.6.1 needs it). Install one (e.g. pyenv install 3.12, or \
	apt-get install python3.12 python3.12-venv), or name one: make PYTHON=/path/to/python3.12 ...
VENV := .venv
STAMP := $(VENV)/.installed
# LeRobot decodes videos with torchcodec, which loads FFmpeg's shared libraries (here Debian's FFmpeg 5.1).
FFMPEG_LIBS := libavutil57 libavcodec59 libavformat59 libavdevice59 libavfilter8 libswscale6 libswresample4
NO_FFMPEG := torchcodec cannot load FFmpeg's libraries, so LeRobot decodes videos with PyAV (and says so in \
	every log). Install FFmpeg to silence it, e.g. apt-get install ffmpeg.

.PHONY: setup demo test bench ffmpeg

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" && "$(PYTHON)" -c '$(VERSION_CHECK)' || { echo "$(NO_PYTHON)" >&2; exit 2; }
	$(VENV)/bin/python -c '$(VERSION_CHECK)' 2>/dev/null || { rm -rf $(VENV) && "$(PYTHON)" -m venv $(VENV); }
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

ffmpeg:
	@{ command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  { apt-get install -y -q --no-install-recommends $(FFMPEG_LIBS) || \
	    { apt-get update -q && apt-get install -y -q --no-install-recommends $(FFMPEG_LIBS); }; } && \
	  $(VENV)/bin/python -c 'import torchcodec'; } >/dev/null 2>&1 || echo "$(NO_FFMPEG)" >&2

setup: $(STAMP)
	@$(VENV)/bin/python -c 'import torchcodec' 2>/dev/null || $(MAKE) --no-print-directory ffmpeg

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
