# Set-up and main jobs. `make demo` and `make test` work on a fresh machine (they install first).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned: an unpinned torch pulls a multi-GB CUDA build. Users with a GPU may override it.
TORCH_SPEC ?= torch==2.13.0
DEMO_DIR ?= runs/demo

.PHONY: install demo test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

DEMO_EPOCHS ?= 25

# The bundled catalogue: features (MiniLM tokens with phrases, EfficientNet-Lite0 4x4 regions at 128 px,
# PCA to 64 dims), then LightGCN and MDR-CHCA with the same epoch budget, their comparison, one explain
# picture and the audit of planted text/image mismatches.
demo: install
	$(BIN)/mdrchca features --out $(DEMO_DIR)/data --set image_size=128 --set pca_dim=64
	rm -rf $(DEMO_DIR)/lightgcn $(DEMO_DIR)/mdrchca  # a run folder is never trained over: the demo starts afresh
	$(BIN)/mdrchca train --model lightgcn --data $(DEMO_DIR)/data --set epochs=$(DEMO_EPOCHS) --out $(DEMO_DIR)/lightgcn --no-progress > /dev/null
	$(BIN)/mdrchca train --model mdrchca --data $(DEMO_DIR)/data --set epochs=$(DEMO_EPOCHS) --out $(DEMO_DIR)/mdrchca --no-progress > /dev/null
	$(BIN)/mdrchca report $(DEMO_DIR)/lightgcn $(DEMO_DIR)/mdrchca
	$(BIN)/mdrchca explain --run $(DEMO_DIR)/mdrchca --item 0 --out $(DEMO_DIR)/explain-item0.png
	$(BIN)/mdrchca audit --run $(DEMO_DIR)/mdrchca --out $(DEMO_DIR)/audit.csv
	$(BIN)/mdrchca recommend --run $(DEMO_DIR)/mdrchca --user 0 --k 10

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/bench_evaluation.py
	$(BIN)/python benchmarks/bench_alignment.py --device cpu

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
