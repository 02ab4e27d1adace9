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

# The main job: a tiny iFlytekSpark pretrained by two data-parallel ranks on this machine (the embedded
# local CPU inventory, dynamic cluster) from a corpus and tokenizer the demo makes, followed live to the
# end, then its status. About a minute on 2 cores once installed.
DEMO_DIR  ?= $(HOME)/.orchestrate/demo

demo: setup
	$(BIN)/orchestrate demo prepare --out $(DEMO_DIR)
	$(BIN)/orchestrate plan --task pretrain --set job.train_dataset=$(DEMO_DIR)/data/pretrain.mindrecord --out $(DEMO_DIR)/plan
	$(BIN)/orchestrate launch pretrain --plan $(DEMO_DIR)/plan
	$(BIN)/orchestrate status

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
