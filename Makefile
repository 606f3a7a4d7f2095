# segkit developer entry points. Every target creates .venv when missing and installs into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.segkit-installed
TEST_STAMP := $(VENV)/.segkit-test-installed

.PHONY: demo test test-fast comparison comparison-fast camvid gpu-check lint format clean-venv

$(STAMP): pyproject.toml Makefile  # the install line below is part of what it depends on
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,sweep]'
	touch $(STAMP)

# The tests also need the optional features' extras (ONNX export and onnxruntime; TensorBoard; the
# explorer's gradio and Playwright, which drives the system Chromium that .ci/run installs with apt;
# the benchmarks' smp peer, tests/benchmarks/): kept out of $(STAMP) so `make demo` installs only
# what it runs.
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,sweep,onnx,tensorboard,app,browser,bench]'
	touch $(TEST_STAMP)

## demo: FCN-8s vs DeepLabv3+ on the built-in synthetic data (no download); prints a table and the
## path of its picture. Extra Hydra overrides: make demo ARGS="trainer.max_steps=100"
ARGS ?=
demo: $(STAMP)
	$(PY) scripts/demo.py $(ARGS)

## test: the whole test suite, slow tests included (what CI runs)
test: $(TEST_STAMP)
	$(PY) -m pytest

## test-fast: skip tests marked slow
test-fast: $(TEST_STAMP)
	$(PY) -m pytest -m "not slow"

## comparison: regenerate docs/comparison.md (6 designs x 3 seeds at a 289 px crop; see the doc for its wall time)
comparison: $(STAMP)
	$(PY) scripts/run_comparison.py

## comparison-fast: the same at the 96 px quickstart scale (ASPP degenerate); doc in its run folder
comparison-fast: $(STAMP)
	$(PY) scripts/run_comparison.py --fast

## camvid: regenerate docs/camvid.md: FCN-32s/8s, DeepLabv3, DeepLabv3+ trained from scratch on CamVid
## (hours on a CPU; resumable: run it again to continue). The data folder is the runner's:
## $SEGKIT_CAMVID, else data/camvid. Options: make camvid ARGS="--list" (plan and state),
## ARGS="--data-root /path/to/CamVid", ARGS="--all" (the extra runs), ARGS="--doc-only"
camvid: $(STAMP)
	$(PY) scripts/run_camvid.py $(ARGS)

## gpu-check: on a CUDA machine, benchmarks + a bf16/channels_last/compile DDP training (< 10 min), one result file
gpu-check: $(STAMP)
	$(PY) scripts/gpu_check.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-venv:
	rm -rf $(VENV)
