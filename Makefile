# Two commands matter on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-10)
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 0
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test lint format install bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[local,anthropic,prefilter,report,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	rm -rf runs/demo
	$(BIN)/cdv generate --data sample --run-dir runs/demo
	@echo "Run stored in runs/demo (rerun the same command to resume)."

test: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install
	$(BIN)/python bench/search_efficiency.py

clean:
	rm -rf $(VENV) runs .pytest_cache build *.egg-info src/*.egg-info
