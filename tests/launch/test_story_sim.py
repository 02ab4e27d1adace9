"""The whole story on the simulated cluster (2 nodes, one rank each, the tiny model), every step through
`orchestrate launch` and each reading an earlier step's output: pretrain -> checkpoint pull + merge ->
finetune -> LoRA -> predict with the LoRA weights (answers in the result files and in `orchestrate logs`)
-> export to MindIR -> eval (loss and perplexity in `status`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.launch.conftest import cli, latest_job, status_of

pytestmark = [pytest.mark.cluster, pytest.mark.mindspore]

VOCAB = "model.vocab_size=400"  # the demo tokenizer's pieces
# A learning rate the tiny model learns with in a few dozen steps (the sim inventory has no job defaults)
LR = ("job.learning_rate=0.005", "job.lr_end=0.0005", "job.warmup_steps=2", "job.total_steps=60")


def _launch(inventory: Path, task: str, *sets: str) -> str:
    args = ["launch", task, "-i", str(inventory), *[a for s in (VOCAB, *LR, *sets) for a in ("--set", s)]]
    res = cli(*args, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    job = latest_job()
    assert status_of(job)["state"] == "succeeded"
    return job


def _merged(job: str, out: Path) -> Path:
    """Pull every rank's newest checkpoint of ``job`` from the nodes, merge them into one file."""
    pulled = cli("checkpoint", "pull", job, "--out", str(out), "--json")
    assert pulled.returncode == 0, pulled.stderr
    merged = cli("checkpoint", "merge", str(out), "--out", str(out / "merged.ckpt"), "--json")
    assert merged.returncode == 0, merged.stderr
    assert sorted(p.name for p in (out / "checkpoint").iterdir()) == ["rank_0", "rank_1"]
    return out / "merged.ckpt"


def _on_node(sim_cluster, node_index: int, command: str) -> str:
    res = sim_cluster.exec(sim_cluster.nodes[node_index].hostname, command)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_pretrain_finetune_lora_predict_export_eval(
    orch_home, sim_cluster, sim_inventory, tiny_dataset, tmp_path
):
    data = tiny_dataset.parent  # `orchestrate demo prepare` wrote pretrain and sft sets and the tokenizer
    sft, tokenizer = data / "sft.mindrecord", data.parent / "tokenizer"

    pretrain = _launch(
        sim_inventory, "pretrain", f"job.train_dataset={tiny_dataset}", "job.save_checkpoint_steps=10"
    )
    base = _merged(pretrain, tmp_path / "pretrain")

    finetune = _launch(sim_inventory, "finetune", f"job.load_checkpoint={base}", f"job.train_dataset={sft}",
                       "job.save_checkpoint_steps=10")  # fmt: skip
    tuned = _merged(finetune, tmp_path / "finetune")
    plan = json.loads((orch_home / "jobs" / finetune / "plan" / "plan.json").read_text())
    assert plan["checkpoint"]["case"] == "direct"  # data parallel: no strategy files asked for

    lora = _launch(sim_inventory, "lora", f"job.load_checkpoint={tuned}", f"job.train_dataset={sft}",
                   "job.save_checkpoint_steps=10")  # fmt: skip
    adapted = _merged(lora, tmp_path / "lora")

    questions = "[Tell me about the river.##Tell me about the garden.]"
    predict = _launch(sim_inventory, "predict_lora", f"job.load_checkpoint={adapted}", f"job.tokenizer={tokenizer}",
                      f"job.predict_data={questions}", "job.predict_length=40")  # fmt: skip
    logs = cli("logs", predict, "-n", "400")
    assert logs.returncode == 0, logs.stderr
    shown = [line for line in logs.stdout.splitlines() if "predict: answer" in line]
    assert len(shown) == 4  # two answers on each of the two ranks
    job_dir = json.loads((orch_home / "jobs" / predict / "plan" / "plan.json").read_text())["nodes"][0][
        "job_dir"
    ]
    written = _on_node(sim_cluster, 0, f"cat {job_dir}/log/infer_result_num2_rank0.json")
    answers = [json.loads(line)["predict"] for line in written.splitlines()]
    assert len(answers) == 2 and all(json.dumps(a, ensure_ascii=False) in logs.stdout for a in answers)

    export = _launch(sim_inventory, "export", f"job.load_checkpoint={tuned}", f"job.tokenizer={tokenizer}")
    job_dir = json.loads((orch_home / "jobs" / export / "plan" / "plan.json").read_text())["nodes"][0][
        "job_dir"
    ]
    mindir = _on_node(sim_cluster, 0, f"find {job_dir} -name '*.mindir'").split()
    assert mindir, "no MindIR file on the node"

    evaluation = _launch(sim_inventory, "eval", f"job.load_checkpoint={tuned}", f"job.eval_dataset={sft}")
    result = status_of(evaluation)["result"]
    assert result["tokens"] > 0 and result["perplexity"] == pytest.approx(math.exp(result["loss"]), rel=1e-3)
    assert result["loss"] < math.log(400)  # trained: better than a uniform guess over the tokenizer's pieces
