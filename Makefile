# polyvlm: the two set-up commands. Both create .venv when missing and install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed-base
FULL := $(VENV)/.installed-full

.PHONY: demo test lint install

# torch first, pinned to the CPU build on this machine's disk; then polyvlm with its dev extras
$(BASE): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BASE)

# the tests also exercise the optional extras: the web demo (gradio) and the Ray runner
$(FULL): $(BASE)
	$(BIN)/pip install -q -e '.[dev,ui,ray]'
	touch $(FULL)

install: $(BASE)

demo: $(BASE)
	$(BIN)/polyvlm quickstart --out runs/quickstart

test: $(FULL)
	$(BIN)/python -m pytest -q tests

lint: $(BASE)
	$(BIN)/ruff check polyvlm tests benchmarks
