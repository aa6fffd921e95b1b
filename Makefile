# wanwu developer commands. `make demo` sets everything up and classifies the sample photos;
# `make test` runs the test-suite. Both work offline (torch comes from the local CPU wheel).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PHOTOS ?= docs/samples
BENCH_DATA ?= ../shared/imagenet-100
TORCH_VERSION ?= 2.13.0

.PHONY: setup demo test serve bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# CPU torch first (local wheel); otherwise pip would pull a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==$(TORCH_VERSION)
	$(PY) -m pip install --quiet -e ".[more-models,bench,test]"
	touch $@

demo: setup
	$(VENV)/bin/wanwu classify $(PHOTOS) --top-k 3

serve: setup
	$(VENV)/bin/wanwu serve

test: setup
	$(PY) -m pytest -q

bench: setup
	$(VENV)/bin/wanwu bench compare --data $(BENCH_DATA) --out docs

clean:
	rm -rf $(VENV) build *.egg-info
