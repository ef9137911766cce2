# Every target sets itself up: a fresh clone needs only Python 3.11 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint typecheck bench clean venv tools

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard insights/_*.c insights/_*.h)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ctinsights demo

# Debian's prometheus + promtool for the rules and dashboard tests (apt, ~30 s, once).
tools:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends prometheus prometheus-alertmanager >/dev/null; \
	  else echo "install Debian's prometheus (apt-get install prometheus) and re-run" >&2; exit 1; fi; }

test: $(STAMP) tools
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python benchmarks/replay_bench.py
	$(BIN)/python benchmarks/worker_bench.py
	$(BIN)/pytest -q tests/unit/streams/test_scenarios.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
