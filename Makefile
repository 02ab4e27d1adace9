# Two commands take a fresh machine to a working tool: `make demo` and `make test`.
PY        ?= python3.11
VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
PYTEST    := $(BIN)/python -m pytest

.PHONY: setup test test-fast lint demo bench clean

setup: $(STAMP)

# Re-installs only when pyproject.toml changes; a second `make setup` takes well under a second.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

test: setup
	$(PYTEST) -q -rfE --durations=20 $(PYTEST_ARGS)

test-fast: setup
	$(PYTEST) -q -m "not cluster and not mindspore" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check orchestrator model tests bench
	$(BIN)/ruff format --check orchestrator model tests bench

# The main demo: a tiny iFlytekSpark pretrained by two data-parallel ranks on this machine (the embedded
# local CPU inventory, dynamic cluster), followed live to the end, then its status. A few minutes on 2 cores.
# The scheduler port is a free one of this machine unless given (MindSpore's 8118 may be taken).
DEMO_DIR  ?= $(HOME)/.orchestrate/demo
DEMO_PORT ?= $(shell $(BIN)/python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
demo: setup
	$(BIN)/orchestrate demo prepare --out $(DEMO_DIR)
	$(BIN)/orchestrate plan --task pretrain --set job.train_dataset=$(DEMO_DIR)/data/pretrain.mindrecord \
		--set job.sched_port=$(DEMO_PORT) --out $(DEMO_DIR)/plan
	$(BIN)/orchestrate launch pretrain --plan $(DEMO_DIR)/plan
	$(BIN)/orchestrate status

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
