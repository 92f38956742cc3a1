# The two commands a newcomer needs: `make run` and `make test`.
# Both create the virtual environment and install everything on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint setup catalogs

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) catalogs

# Compiled catalogs (.mo) are built here, not committed; a broken catalog stops the build.
catalogs: $(STAMP)
	@$(BIN)/bot translations compile --quiet

run: setup
	$(BIN)/bot run $(RUN_ARGS)

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check bot workers tests bench
	$(BIN)/mypy
