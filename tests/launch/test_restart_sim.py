"""Resume after failure on the simulated cluster with the real model on CPU (2 nodes x 1 rank, DP).

One job is killed mid-run with ``--max-restarts 1``: the monitor collects the logs, relaunches it from
the newest step both ranks saved, and it finishes with the step count continuing. Another is stopped and
resumed by hand with ``launch --resume``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.launch.conftest import cli, latest_job, status_of, wait_for, wait_state

pytestmark = [pytest.mark.cluster, pytest.mark.mindspore]
STEP = re.compile(r"step:\[\s*(\d+)/\s*(\d+)\]")
RESUMED = "Start resume training from checkpoint"  # MindFormers' line when it loads the resume context


def _launch(inventory: Path, dataset: Path, *extra: str) -> str:
    res = cli("launch", "pretrain", "-i", str(inventory), "--set", f"job.train_dataset={dataset}",
              "--set", "job.save_checkpoint_steps=2", "--detach", *extra)  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    return latest_job()


def _min_step(job_id: str) -> int:
    workers = [r for n in status_of(job_id)["nodes"] for r in n["ranks"] if r["rank"] is not None]
    return min([(r["progress"] or {}).get("step", 0) for r in workers] or [0])


def _steps(cluster, rank: int, job: str) -> tuple[list[int], list[int], int]:
    """The steps rank ``rank`` of ``job`` logged before and after the resume (one log over the attempts), and
    the total."""
    node = cluster.nodes[rank]
    logs = list((node.workdir / "jobs").glob(f"*-pretrain/runs/{job}/output/log/rank_{rank}/stdout.log"))
    assert len(logs) == 1, logs
    before, marker, after = logs[0].read_text(errors="replace").rpartition(RESUMED)
    assert marker, "the second attempt did not resume"
    total = int(STEP.findall(after)[-1][1])
    return [int(s) for s, _ in STEP.findall(before)], [int(s) for s, _ in STEP.findall(after)], total


def _attempts(home: Path, job_id: str) -> list[dict]:
    return json.loads((home / "jobs" / job_id / "attempts.json").read_text())["attempts"]


def test_killed_rank_restarts_from_the_last_common_checkpoint(
    orch_home, sim_cluster, sim_inventory, long_dataset
):
    job = _launch(sim_inventory, long_dataset, "--max-restarts", "1")
    wait_for(lambda: _min_step(job) >= 5, 240, "five steps on every rank")
    victim = next(r for n in status_of(job)["nodes"] for r in n["ranks"] if r["name"] == "rank-1")
    sim_cluster.exec(sim_cluster.nodes[1].hostname, f"kill -9 {victim['pid']}")
    st = wait_state(job, ("succeeded", "failed"), 300)
    assert st["state"] == "succeeded", (st["message"], (st["root_cause"] or {}).get("log_tail"))
    first, second = _attempts(orch_home, job)
    assert (first["outcome"], first["cause"].split(":")[0]) == (
        "failed",
        f"rank-1 on {sim_cluster.nodes[1].host}",
    )
    resumed = second["resumed_from"]
    assert second["how"] == "restart" and resumed >= 2 and resumed % 2 == 0  # a saved step
    assert (st["attempt"], st["max_attempts"], st["resumed_from"]) == (2, 2, resumed)
    for rank in (0, 1):  # the step count continues: attempt 2 starts right after the step it resumed from
        before, after, total = _steps(sim_cluster, rank, job)
        assert before == list(range(1, len(before) + 1)) and len(before) >= resumed
        assert after == list(range(resumed + 1, total + 1))
    index = Path(st["logs_index"])  # collected automatically after the failed attempt
    assert index.is_file() and f"**rank-1 on {sim_cluster.nodes[1].host}**: exited 137" in index.read_text()
    events = [
        json.loads(x)["kind"] for x in (orch_home / "jobs" / job / "events.jsonl").read_text().splitlines()
    ]
    assert events.index("logs-collected") < events.index("attempt") < events.index("succeeded")
    out = cli("status", job)
    assert f"attempt 2/2, resumed from step {resumed}" in out.stdout.replace("\n", " ")
    rows = json.loads(cli("jobs", "--json").stdout)
    assert next(r for r in rows if r["job_id"] == job)["attempts"] == "2/2"


def test_stopped_job_resumes_by_hand(orch_home, sim_cluster, sim_inventory, tiny_dataset):
    # four epochs (~90 steps), so that the stop below lands mid-run even on an idle machine
    job = _launch(sim_inventory, tiny_dataset, "--set", "runner_config.epochs=4")
    wait_for(lambda: _min_step(job) >= 5, 240, "five steps on every rank")
    assert cli("stop", job).returncode == 0
    res = cli("launch", "--resume", job)
    assert res.returncode == 0, res.stderr + res.stdout
    st = status_of(job)
    assert st["state"] == "succeeded" and st["attempt"] == 2 and st["resumed_from"] >= 2
    second = _attempts(orch_home, job)[1]
    assert second["how"] == "resume" and second["resumed_from"] == st["resumed_from"]
    for rank in (0, 1):  # every checkpoint of this job is in its own output folder
        node = sim_cluster.nodes[rank]
        assert list((node.workdir / "jobs").glob(f"*-pretrain/output/{job}/checkpoint/rank_{rank}/*.ckpt"))
        linked = list(
            (node.workdir / "jobs").glob(f"*-pretrain/output/{job}/resume/attempt-2/rank_{rank}/*.ckpt")
        )
        assert len(linked) == 1
