# Every target sets itself up: a fresh clone needs only Python 3.11 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every direct and transitive version, with hashes: a fresh clone installs what CI tested.
LOCK := requirements.lock
PIP := $(BIN)/pip --disable-pip-version-check

.PHONY: demo test test-pure check lint typecheck bench clean venv tools lock test-latest

venv: $(STAMP)

$(STAMP): $(LOCK) pyproject.toml setup.py $(wildcard insights/csrc/*.c insights/csrc/*.h)
	$(PY) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Refresh the lock from pyproject.toml's ranges (newest allowed releases), then `make check`.
lock: $(STAMP)
	$(PIP) install --quiet uv
	echo 'setuptools>=77' | $(BIN)/uv pip compile --quiet pyproject.toml - --extra dev \
	  --universal --python-version 3.11 --generate-hashes -o $(LOCK)
	$(BIN)/uv pip compile --quiet pyproject.toml -c $(LOCK) --universal --python-version 3.11 \
	  --generate-hashes -o deploy/requirements-runtime.lock
	touch pyproject.toml

# The unit and property suites on the newest releases pyproject.toml allows (not the lock),
# so an upstream change is met on purpose, not by a newcomer's fresh clone.
test-latest:
	rm -rf .venv-latest
	$(PY) -m venv .venv-latest
	.venv-latest/bin/pip install --quiet --disable-pip-version-check --upgrade -e '.[dev]'
	.venv-latest/bin/pip list --format=freeze | grep -i -E '^(msgspec|numpy|scipy|kafka-python|pydantic|river)='
	.venv-latest/bin/pytest -q -p no:cacheprovider tests/unit tests/property insights

demo: $(STAMP)
	$(BIN)/ctinsights demo

# Debian's prometheus + promtool for the rules and dashboard tests, and Debian's chromium for
# the console's browser tests (apt, ~1 min, once).
tools:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null \
	  && command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends prometheus prometheus-alertmanager chromium >/dev/null; \
	  else echo "install Debian's prometheus and chromium (apt-get install prometheus" \
	    "chromium) and re-run" >&2; exit 1; fi; }

test: $(STAMP) tools
	$(BIN)/pytest -q

# The unit and property suites with the C accelerator switched off: the pure-Python code is
# the reference, and it must pass on its own (insights.native).
test-pure: $(STAMP)
	CTINSIGHTS_PURE_PYTHON=1 $(BIN)/pytest -q -p no:cacheprovider -m "not accelerator" \
	  tests/unit tests/property insights

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test test-pure

bench: $(STAMP)
	$(BIN)/python benchmarks/replay_bench.py
	$(BIN)/python benchmarks/worker_bench.py
	$(BIN)/python benchmarks/run_vs_replay_bench.py
	$(BIN)/pytest -q tests/unit/streams/test_scenarios.py

clean:
	rm -rf $(VENV) .venv-latest .mypy_cache .pytest_cache .ruff_cache
