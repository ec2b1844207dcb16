# The two commands a newcomer needs are `make up` and `make test`; each installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test test-slow lint bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,embedded]'
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/scamtrail up

# Tests use SCAMTRAIL_TEST_* when set, local servers when they answer, else testcontainers.
test: $(STAMP)
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
