"""Jobs that start from a data-parallel pretrain's checkpoint, on the embedded local default (two CPU ranks,
the tiny model): finetune and LoRA load it directly and run to completion (no strategy files asked for),
predict with a tokenizer smaller than the model's vocabulary (given as its .model file) writes text, and
eval's loss and perplexity reach ``status``. The checkpoint is written as a 2-rank DP pretrain leaves it
(rank_0/ and rank_1/ with two steps each, meta.json, an empty strategy/), with random weights."""

from __future__ import annotations

import ast
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.inventory.defaults import default_inventory_text
from tests.fixtures.train import run_preprocess
from tests.launch.conftest import cli, latest_job, status_of

pytestmark = pytest.mark.mindspore

VOCAB = 1024  # the tiny preset's vocabulary: larger than the test tokenizer's 400 pieces

# What a two-rank data-parallel pretrain of the tiny preset leaves in <output>/<job>/ (one MindSpore process).
_WRITE_DP_CHECKPOINT = """
import json, sys
from pathlib import Path
import numpy as np
import mindspore as ms
from iflytekspark.checkpoint import expected_parameters

out, vocab = Path(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
sizes = dict(vocab_size=vocab, hidden_size=64, ffn_hidden_size=256, num_layers=2)
weights = [{"name": n, "data": ms.Tensor(((1.0 if n.endswith(".gamma") else 0.0)
            + 0.02 * rng.standard_normal(s)).astype(np.float32))} for n, s in expected_parameters(sizes).items()]
state = [{"name": f"adam_{m}.{w['name']}", "data": ms.Tensor(np.zeros(w["data"].shape, np.float32))}
         for m in "mv" for w in weights] + [{"name": "global_step", "data": ms.Tensor(np.array([4], np.int32))}]
for rank in (0, 1):
    folder = out / "checkpoint" / f"rank_{rank}"
    folder.mkdir(parents=True)
    for step in (2, 4):
        ms.save_checkpoint(weights + state, str(folder / f"iFlytekSpark_tiny_rank_{rank}-1_{step}.ckpt"))
    (folder / "meta.json").write_text(json.dumps({"last_epoch": 1, "last_step": 4}))
(out / "strategy").mkdir()
"""


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("local-node")


@pytest.fixture(scope="module")
def local_inventory(tmp_path_factory, node_dir) -> Path:
    """The embedded default (this machine, two CPU rank slots, the tiny model), its work folder moved."""
    path = tmp_path_factory.mktemp("inv") / "local.yaml"
    path.write_text(default_inventory_text().replace("~/.orchestrate/local-node", str(node_dir)))
    return path


@pytest.fixture(scope="module")
def dp_checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pretrain-job")
    proc = subprocess.run([sys.executable, "-c", _WRITE_DP_CHECKPOINT, str(out), str(VOCAB)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out / "checkpoint"


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory, tiny_tokenizer) -> Path:
    """24 SFT rows of the tiny preset's 64 + 1 ids (input_ids, loss_mask): 12 steps on two ranks."""
    from iflytekspark.testing import write_corpus

    folder = tmp_path_factory.mktemp("sft")
    corpus = write_corpus(folder / "alpaca.json", n=24, max_words=10)
    out = folder / "sft.mindrecord"
    proc = run_preprocess("sft", tiny_tokenizer, corpus, out, "--seq_length", "64", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    return out


def _launch(inventory: Path, task: str, *sets: str) -> tuple[str, subprocess.CompletedProcess]:
    args = ["launch", task, "-i", str(inventory), "--set", f"model.vocab_size={VOCAB}"]
    res = cli(*args, *[a for s in sets for a in ("--set", s)], timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    job = latest_job()
    assert status_of(job)["state"] == "succeeded"
    return job, res


def _job_output(node_dir: Path, task: str, job: str) -> Path:
    return node_dir / "jobs" / f"local-{task}" / "output" / job


def _rank_log(node_dir: Path, task: str, rank: int, job: str) -> str:
    """The rank's log in the job's own run folder (``<job folder>/runs/<job id>/``)."""
    log = (
        node_dir / "jobs" / f"local-{task}" / "runs" / job / "output" / "log" / f"rank_{rank}" / "stdout.log"
    )
    return log.read_text(errors="replace")


@pytest.mark.parametrize("task", ["finetune", "lora"])
def test_training_from_a_dp_pretrain_checkpoint_runs_to_completion(orch_home, local_inventory, node_dir,
                                                                  dp_checkpoint, sft_data, task):  # fmt: skip
    job, res = _launch(local_inventory, task, f"job.load_checkpoint={dp_checkpoint}",
                       f"job.train_dataset={sft_data}", "job.save_checkpoint_steps=4")  # fmt: skip
    assert "note: checkpoint: direct:" in res.stdout and "does not shard weights" in res.stdout
    plan = json.loads((orch_home / "jobs" / job / "plan" / "plan.json").read_text())
    assert (plan["checkpoint"]["case"], plan["checkpoint"]["auto_trans_ckpt"]) == ("direct", False)
    for rank in (0, 1):
        log = _rank_log(node_dir, task, rank, job)
        found = re.search(r"Network parameters are not loaded: \((\[[^\]]*\])", log)
        assert found, f"rank {rank} loaded no checkpoint"
        missing = ast.literal_eval(found.group(1))  # LoRA's adapters start from their own init
        assert [n for n in missing if "mindpet_delta_lora" not in n] == [] and bool(missing) == (
            task == "lora"
        )
        saved = list((_job_output(node_dir, task, job) / "checkpoint" / f"rank_{rank}").glob("*.ckpt"))
        assert saved, f"rank {rank} saved no checkpoint"


def test_predict_with_a_smaller_tokenizer_given_as_its_model_file_writes_text(orch_home, local_inventory, node_dir,
                                                                              dp_checkpoint, tiny_tokenizer):  # fmt: skip
    model_file = tiny_tokenizer / "tokenizer.model"
    job, _res = _launch(local_inventory, "predict", f"job.load_checkpoint={dp_checkpoint}", f"job.tokenizer={model_file}",
                        "job.predict_data=[Tell me about the river.##Hello]", "job.predict_length=40")  # fmt: skip
    run = (
        node_dir / "jobs" / "local-predict" / "runs" / job
    )  # the job's own folder, the ranks' working directory
    for rank in (0, 1):
        lines = (run / "log" / f"infer_result_num2_rank{rank}.json").read_text()
        answers = [json.loads(line)["predict"] for line in lines.splitlines()]
        assert len(answers) == 2 and any(answers), answers  # decoded: no id beyond the tokenizer's pieces


def test_eval_loss_and_perplexity_reach_the_status(
    orch_home, local_inventory, node_dir, dp_checkpoint, sft_data
):
    job, _ = _launch(
        local_inventory, "eval", f"job.load_checkpoint={dp_checkpoint}", f"job.eval_dataset={sft_data}"
    )
    result = status_of(job)["result"]
    assert abs(result["loss"] - math.log(VOCAB)) < 1.0  # near-uniform predictions of random weights
    assert result["perplexity"] == pytest.approx(math.exp(result["loss"]), rel=1e-3)
    assert result["rows"] == 24 and result["tokens"] > 0
    written = json.loads((_job_output(node_dir, "eval", job) / "eval_result.json").read_text())
    assert written["tokens"] == result["tokens"]
    shown = cli("status", job)
    assert shown.returncode == 0 and f"perplexity {result['perplexity']:.4f}" in shown.stdout
    as_json = json.loads(cli("status", job, "--json").stdout)
    assert as_json["result"] == result


def test_pretrain_runs_on_both_ranks_and_saves_their_checkpoints(
    orch_home, local_inventory, node_dir, tiny_dataset
):
    job, _ = _launch(
        local_inventory, "pretrain", f"job.train_dataset={tiny_dataset}", "job.save_checkpoint_steps=5"
    )
    for rank in (0, 1):
        assert list((_job_output(node_dir, "pretrain", job) / "checkpoint" / f"rank_{rank}").glob("*.ckpt"))


def test_predict_lora_reads_the_lora_jobs_checkpoint(orch_home, local_inventory, node_dir, tiny_tokenizer):
    """Runs after the LoRA test above (same module): predict_lora loads what that job saved."""
    saved = sorted((node_dir / "jobs" / "local-lora" / "output").glob("*/checkpoint/rank_0/*.ckpt"))
    assert saved, "the LoRA test of this module left no checkpoint"
    _launch(local_inventory, "predict_lora", f"job.load_checkpoint={saved[-1]}", f"job.tokenizer={tiny_tokenizer}",
            "job.predict_data=[Tell me about the river.]", "job.predict_length=40")  # fmt: skip
    for rank in (0, 1):
        log = _rank_log_of(node_dir, "predict_lora", rank)
        assert "Network parameters are not loaded" not in log  # base and adapters both came from the file
        assert "predict: answer 0:" in log


def test_export_writes_mindir_on_every_rank(
    orch_home, local_inventory, node_dir, dp_checkpoint, tiny_tokenizer
):
    job, _ = _launch(
        local_inventory, "export", f"job.load_checkpoint={dp_checkpoint}", f"job.tokenizer={tiny_tokenizer}"
    )
    assert list((node_dir / "jobs" / "local-export").rglob("*.mindir")), "no MindIR written"


def _rank_log_of(node_dir: Path, task: str, rank: int) -> str:
    """The rank's stdout log, wherever the task keeps it (training tasks under output/log, others under log)."""
    found = sorted((node_dir / "jobs" / f"local-{task}").rglob(f"rank_{rank}/stdout.log"))
    assert found, f"no stdout log of rank {rank}"
    return found[-1].read_text(errors="replace")
