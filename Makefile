# Shomei: one entry point for running, testing, checking and benchmarking.
# Every target creates its own virtual environment (.venv) on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN_DIR ?= demo-out

.PHONY: run test check lint typecheck bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## make run: build the demonstration federation in $(RUN_DIR)/ through the real code paths (once;
## FRESH=1 rebuilds it), then serve it on http://127.0.0.1:8000 with the scheduler and a local
## SMTP sink until Ctrl-C.
run: $(STAMP)
	$(BIN)/shomei demo $(if $(FRESH),--fresh) --serve $(RUN_DIR)

## make test: the whole test suite (SQLite always; PostgreSQL when SHOMEI_TEST_DATABASE_URL is set).
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

## make check: ruff, mypy and the tests.
check: lint typecheck test

## make bench: every benchmark; figures in bench/results.json.
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(RUN_DIR) .pytest_cache .mypy_cache .ruff_cache
