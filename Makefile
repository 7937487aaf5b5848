# Two commands matter: `make run` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced

.PHONY: run test lint bootstrap clean bench-feed bench-agents

$(STAMP): uv.lock pyproject.toml */pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.8
	$(BIN)/uv sync --frozen --all-packages --quiet
	@touch $(STAMP)

bootstrap: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m cephalo_dev run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs/common/src services/*/src agent/src cli/src dev/src

test: lint
	$(BIN)/pytest

bench-feed: $(STAMP)
	sh services/package-feed/bench/ensure_nginx.sh
	$(BIN)/python services/package-feed/bench/bench_feed.py $(BENCH_FEED_ARGS)

bench-agents: $(STAMP)
	$(BIN)/python tests/bench/bench_agents.py

clean:
	rm -rf $(VENV) .cephalo
