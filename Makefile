# Two commands take a fresh machine to a working tool: `make demo` and `make test` (both run `make setup`).
PY        ?= python3.11
VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
PYTEST    := $(BIN)/python -m pytest

.PHONY: setup system-packages test test-fast lint demo demo-cluster demo-story bench clean

setup: system-packages $(STAMP)

# The system packages of scripts/system-packages.txt (sshd, ssh, ip, ps, pdsh, Python venv): installed
# when missing and root; otherwise the exact apt-get line is printed and the cluster tests are skipped.
system-packages:
	@bash scripts/install-system-packages.sh

# Re-installs only when pyproject.toml changes; a second `make setup` takes well under a second.
# `.[model,dev]`: the controller, the model package's MindSpore + MindFormers, and the test tools.
$(STAMP): pyproject.toml | system-packages
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[model,dev]'
	@touch $(STAMP)

# -rfEs: failures, errors and every skip reason (a skipped cluster test always says why) in the summary.
test: setup
	$(PYTEST) -q -rfEs --durations=20 $(PYTEST_ARGS)

test-fast: setup
	$(PYTEST) -q -rs -m "not cluster and not mindspore" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check orchestrator model tests bench
	$(BIN)/ruff format --check orchestrator model tests bench

# The main job: a tiny iFlytekSpark pretrained by two data-parallel ranks on this machine (the embedded
# local CPU inventory, dynamic cluster) from a corpus and tokenizer the demo makes, followed live to the
# end, then what it did (loss first -> last, tokens/s, checkpoints, what to try next). About a minute
# on 2 cores once installed.
DEMO_DIR  ?= $(HOME)/.orchestrate/demo

demo: setup
	$(BIN)/orchestrate demo prepare --out $(DEMO_DIR)
	$(BIN)/orchestrate plan --task pretrain --set job.train_dataset=$(DEMO_DIR)/data/pretrain.mindrecord --out $(DEMO_DIR)/plan
	$(BIN)/orchestrate launch pretrain --plan $(DEMO_DIR)/plan
	$(BIN)/orchestrate demo summary

# The same job on a simulated 2-node cluster (root): a rank killed, the job failed with it named,
# restarted from the last checkpoint to the end, logs collected; the cluster removed even if interrupted.
demo-cluster: setup
	BIN=$(BIN) DEMO_DIR=$(DEMO_DIR) bash scripts/demo-cluster.sh

# Every task after the demo, each reading an earlier step's output, on the embedded default: pretrain ->
# pull + merge -> finetune -> LoRA -> predict with the LoRA weights -> export -> eval; step times and a
# generation at the end. About five minutes on 2 cores.
demo-story: setup
	BIN=$(BIN) DEMO_DIR=$(DEMO_DIR) bash scripts/demo-story.sh

# Every benchmark (bench/README.md): medians over interleaved repeats (--repeats N), ratios against a
# named baseline of the same run, --json for one JSON document; none fails on a figure. Baselines:
#   bench_decode      KV-cache decoding vs full recomputation of the whole sequence at every step
#   bench_train       iFlytekSpark training step vs MindFormers' LLaMA at the same sizes
#   bench_preprocess  2 tokenising processes vs 1 (python -m iflytekspark.data pretrain|sft)
#   bench_plan        make_plan + write_plan at 8..64 nodes vs the 2-node plan (growth)
#   bench_ranktable   build+check+JSON vs merge_hccl.py's plain concatenation; npu-smi parse vs splitting cells
#   bench_sim         sim up/down of 8 and 16 nodes vs 2 nodes (growth; root)
#   bench_transport   SSH fan-out vs the same calls node after node, max_workers=1 (root)
#   bench_launch      launch and status round trip vs a sequential ssh loop, pdsh as a 2nd reference (root)
#   bench_push        push of a checkpoint vs sequential scp of the same file (root)
# Without root the four cluster benchmarks print "skipped"; bench_decode exits 1 only if its two sides'
# tokens differ (the comparison would be void).
bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
