# wanwu developer commands. `make demo` installs what running needs (no torch) and classifies the
# sample photos; `make test` adds torch (the reference engine; local CPU wheel first) and the
# test and bench extras, then runs the tests a developer runs before every commit (unit and
# integration, minutes); `make test-all` runs every test, the slow tier too (soak, load, Ray, the
# largest matrices): what CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PHOTOS ?= docs/samples
BENCH_DATA ?= ../shared/imagenet-100
TORCH_VERSION ?= 2.13.0

.PHONY: setup runtime demo test test-all lint serve bench check-torchfree clean

# the runtime only: ONNX Runtime, NumPy, Pillow, the web server; no torch
runtime: $(VENV)/.runtime

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e .
	touch $@

# everything for development: the runtime, torch (reference engine, parity tests), all extras
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(VENV)/.runtime
	# CPU torch first (local wheel); otherwise pip would pull a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==$(TORCH_VERSION)
	$(PY) -m pip install --quiet -e ".[torch,more-models,bench,test,ray,faces]"
	touch $@

# PHOTOS is one file or folder, passed through the environment so that make never splits it:
# spaces, quotes and Chinese names arrive whole (make demo PHOTOS="~/Pictures/2024/旅行 北京");
# a leading ~ that the shell did not expand (it was quoted) is the home folder, as typed
demo: export PHOTOS := $(PHOTOS)
demo: runtime
	photos="$$PHOTOS"; case "$$photos" in "~"|"~/"*) photos="$$HOME$${photos#\~}";; esac; \
	$(VENV)/bin/wanwu classify "$$photos" --top-k 3

serve: runtime
	$(VENV)/bin/wanwu serve

# a fresh venv with wanwu and without torch: `import torch` fails, the sample photos are right
check-torchfree:
	$(PYTHON) scripts/torchfree_install.py --check

# before every commit: everything but the tests marked slow (pyproject.toml's markers)
test: setup
	$(PY) -m pytest -q -m "not slow"

# everything, the slow tier too: what .ci/run runs
test-all: setup
	$(PY) -m pytest -q

bench: setup
	$(VENV)/bin/wanwu bench compare --data $(BENCH_DATA) --out docs

clean:
	rm -rf $(VENV) build *.egg-info

# ruff (lint + format check) and mypy, as CI runs them
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
