"""A launch through a bastion (``sim up --bastion``): the controller reaches the nodes only through the
jump host, the ranks talk to each other (dynamic cluster scheduler) on the private network. A killed
rank fails the job, the rest is stopped, and the logs are collected through the bastion."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.launch.conftest import (
    assert_nothing_left,
    cli,
    latest_job,
    one_rank_per_node,
    ranks_by_name,
    status_of,
    wait_for,
    wait_state,
)

pytestmark = [pytest.mark.cluster, pytest.mark.mindspore]


def _stepping(job_id: str) -> bool:
    workers = [r for r in ranks_by_name(status_of(job_id)).values() if r["rank"] is not None]
    return bool(workers) and all(
        r["state"] == "running" and (r["progress"] or {}).get("step", 0) >= 1 for r in workers
    )


def test_killed_rank_through_the_bastion(orch_home, bastion_cluster, tiny_dataset, tmp_path):
    c = bastion_cluster
    inv = tmp_path / "inv.yaml"
    inv.write_text(one_rank_per_node(Path(c.inventory).read_text()))
    assert "proxy_jump:" in inv.read_text()
    res = cli("launch", "pretrain", "-i", str(inv), "--set", f"job.train_dataset={tiny_dataset}", "--detach")
    assert res.returncode == 0, res.stderr + res.stdout
    job = latest_job()
    wait_for(lambda: _stepping(job), 180, "training steps on every rank")
    victim = ranks_by_name(status_of(job))[f"{c.nodes[1].host}/rank-1"]
    c.exec(c.nodes[1].hostname, f"kill -9 {victim['pid']}")
    st = wait_state(job, ("failed",), 120)
    cause = st["root_cause"]
    assert (cause["host"], cause["rank"], cause["exit_code"]) == (c.nodes[1].host, 1, 137)
    assert_nothing_left(c, job)
    index = Path(wait_for(lambda: status_of(job).get("logs_index"), 60, "logs collected after the failure"))
    assert f"**rank-1 on {c.nodes[1].host}**: exited 137" in index.read_text()
    out = tmp_path / "collected"
    collect = cli("collect-logs", job, "--out", str(out))
    assert collect.returncode == 0, collect.stdout + collect.stderr
    assert all(any((out / job / n.host).rglob("*.log")) for n in c.nodes)
