# Two entry points, both safe on a fresh machine:
#   make quickstart   creates .venv, installs distill, runs the whole study on SynthFace
#   make test         creates/updates .venv, installs distill[dev], runs the test suite
# torch is pinned here (not in pyproject) because a bare `torch` pulls a multi-GB CUDA build;
# 2.13.0 is the CPU build this project is developed and tested against.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
# extra pip arguments for torch, e.g. TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu" (the CPU-only build)
TORCH_INDEX ?=
PIP = $(VENV)/bin/pip
PY = $(VENV)/bin/python

.PHONY: quickstart test install install-dev clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

install: $(VENV)/bin/activate
	$(PIP) install -q "$(TORCH)" $(TORCH_INDEX)
	$(PIP) install -q -e .

install-dev: $(VENV)/bin/activate
	$(PIP) install -q "$(TORCH)" $(TORCH_INDEX)
	$(PIP) install -q -e ".[dev]"

quickstart: install
	$(VENV)/bin/distill quickstart

test: install-dev
	WANDB_MODE=offline $(PY) -m pytest -n 2 tests

clean:
	rm -rf $(VENV) build *.egg-info
