# Every target bootstraps .venv on a fresh machine; re-running is cheap (a stamp file).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test lint slow clean postgres chromium

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The lab's showcase: 4 MLP families x 4 parameter budgets x 2 seeds (+ lr search per family);
# re-running resumes (finished trials are skipped).
demo: $(STAMP)
	$(BIN)/mlplab sweep examples/quickstart.toml --workers 2 --out runs/quickstart
	$(BIN)/mlplab report runs/quickstart

# The distributed-store test starts a real PostgreSQL server: install the Debian package if missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (apt-get update && apt-get install -y postgresql) || \
	  echo "warning: cannot install PostgreSQL; tests/test_lab_postgres.py will be skipped"

# The browser tests screenshot the HTML reports in headless Chromium: install the Debian package
# if missing (needs root and apt; otherwise those tests are skipped with a message).
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-headless-shell >/dev/null 2>&1 || \
	  (apt-get update && apt-get install -y --no-install-recommends chromium) || \
	  echo "warning: cannot install Chromium; the browser tests in tests/test_inspect_report.py will be skipped"

test: $(STAMP) postgres chromium
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest -q

slow: $(STAMP)
	$(BIN)/pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf runs .pytest_cache
