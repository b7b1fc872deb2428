# Two commands from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench stress backtest lint fakes clean

# (Re)install only when the venv is missing or pyproject.toml changed.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	@if [ -z "$$ADMIN_TOKEN" ]; then \
	  ADMIN_TOKEN=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(24))'); \
	  echo "ADMIN_TOKEN not set; generated one for this run: $$ADMIN_TOKEN"; \
	  export ADMIN_TOKEN; exec $(BIN)/python server.py; \
	else exec $(BIN)/python server.py; fi

test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m bench.runtime
	$(BIN)/python -m bench.outbound
	$(BIN)/python -m bench.stats
	$(BIN)/python -m bench.backtest

# Crash, fault, fuzz, consent, load and security figures in one table (README, "Stress").
stress: install
	$(BIN)/python -m stress

# What the working tree's flows would have done to the recorded inputs (README, "Backtesting").
backtest: install
	$(BIN)/python -m bot.backtest $(ARGS)

lint: install
	$(BIN)/ruff check .

# Loopback provider fakes for a local demo (see README, "Local demo").
fakes: install
	$(BIN)/python -m tests.fakes

clean:
	rm -rf $(VENV) data
