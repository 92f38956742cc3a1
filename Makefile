# The two commands a newcomer needs: `make run` and `make test`.
# Both create the virtual environment and install everything on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint setup catalogs services

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

test: setup services
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The suite talks to a real Redis and a real PostgreSQL on loopback: start local ones that
# are installed but down. The suite itself says clearly what is missing if this cannot.
services:
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 \
	  || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
	  >/dev/null 2>&1 || true
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null \
	  || { [ -d /etc/postgresql ] && pg_ctlcluster --skip-systemctl-redirect \
	       "$$(ls /etc/postgresql | head -1)" main start >/dev/null 2>&1; } || true

lint: setup
	$(BIN)/ruff check bot workers tests bench
	$(BIN)/mypy
