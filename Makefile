# The two commands a newcomer needs are `make up` and `make test`; each installs what it needs:
# `make up` the service and the embedded PostgreSQL and Redis only, `make test` adds the test
# tools (pytest, Playwright, ruff, mypy) to the same virtualenv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
STAMP  := $(VENV)/.installed

.PHONY: up test test-slow lint bench install mcp-inspector clean

$(RUNTIME): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded]'
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(BIN)/pip install --quiet -e '.[test,embedded]'
	touch $(STAMP)

install: $(STAMP)

up: $(RUNTIME)
	$(BIN)/scamtrail up

# The MCP Inspector's CLI mode for tests/e2e/test_mcp_inspector.py, at the versions
# tests/e2e/mcp-inspector/package-lock.json pins (npm; about 40 MB). Without npm, or offline, that
# test skips; under CI=true (.ci/run) both are failures.
INSPECTOR := tests/e2e/mcp-inspector
INSPECTOR_STAMP := $(INSPECTOR)/node_modules/.installed
INSPECTOR_SKIPS := tests/e2e/test_mcp_inspector.py skips (fails under CI=true)

$(INSPECTOR_STAMP): $(INSPECTOR)/package-lock.json
	@if ! command -v npm >/dev/null; then \
	  echo "npm not found: $(INSPECTOR_SKIPS)"; [ "$$CI" != true ]; \
	elif npm ci --prefix $(INSPECTOR) --no-audit --no-fund --ignore-scripts --loglevel=error; then \
	  touch $@; \
	else \
	  echo "npm ci failed: $(INSPECTOR_SKIPS)"; [ "$$CI" != true ]; \
	fi

mcp-inspector: $(INSPECTOR_STAMP)

# Tests use SCAMTRAIL_TEST_* when set, local servers when they answer, else testcontainers.
test: $(STAMP) $(INSPECTOR_STAMP)
	scripts/with-local-services $(BIN)/pytest $(ARGS)

# pytest exits 5 when nothing is marked slow; that is not a failure.
test-slow: $(STAMP)
	scripts/with-local-services $(BIN)/pytest -m slow $(ARGS) || [ $$? -eq 5 ]

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

# Every benchmark, several runs each; writes docs/PERFORMANCE.md (medians).
bench: $(STAMP)
	PYTHONPATH=. scripts/with-local-services $(BIN)/python benchmarks/report.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
