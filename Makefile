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

demo: install
	$(BIN)/mdrchca data generate
	$(BIN)/mdrchca train --model bpr --out $(DEMO_DIR)/bpr --no-progress > /dev/null
	$(BIN)/mdrchca train --model lightgcn --out $(DEMO_DIR)/lightgcn --no-progress > /dev/null
	$(BIN)/mdrchca report $(DEMO_DIR)/bpr $(DEMO_DIR)/lightgcn
	$(BIN)/mdrchca recommend --run $(DEMO_DIR)/lightgcn --user 0 --k 10

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/bench_evaluation.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
