# Two commands matter on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := local,anthropic,prefilter,report,train,ray,dev
# Reinstall when the dependencies or the chosen extras change.
STAMP := $(VENV)/.installed-$(shell (cat pyproject.toml; echo '$(EXTRAS)') | sha1sum | cut -c1-10)
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 0
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test lint format install browser bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

# The report's browser test needs Chromium; installed where apt can (as root), skipped elsewhere.
browser:
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
	    && [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium for the report's browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium chromium-driver >/dev/null) || echo "chromium unavailable: browser test skipped"; \
	fi

demo: install
	rm -rf runs/demo
	$(BIN)/cdv generate --data sample --run-dir runs/demo
	$(BIN)/cdv evaluate --run runs/demo --models embed/all-MiniLM-L6-v2
	$(BIN)/cdv report runs/demo -o runs/demo/report.html
	@echo "Report: $(CURDIR)/runs/demo/report.html (rerun the same command to resume a run)."

test: install browser
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
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/prefilter.py
	$(BIN)/python bench/forecast.py
	$(BIN)/python bench/multi_target.py

clean:
	rm -rf $(VENV) runs .pytest_cache build *.egg-info src/*.egg-info
