"""The Slurm backend end to end on the simulated cluster with a real Slurm (slurmctld on the host, slurmd in
each node) and the real model: the nodes come from an allocation `orchestrate launch` submits; every
command reaches them as a job step from the login node (node1, over SSH as the job user).

A pretrain to completion, a killed rank, collect-logs and stop by hand, a restart inside the same
allocation, and a time-limit kill;
after each, Slurm's view and ours agree: the allocation ended and no process of the job is left.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest

from tests.fixtures.sim import cluster_up, needs_slurm
from tests.launch.conftest import (
    _demo_dataset,
    assert_nothing_left,
    cli,
    latest_job,
    ranks_by_name,
    status_of,
    wait_for,
    wait_state,
)

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.mindspore,
    needs_slurm,
]


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator:
    with cluster_up("sl", nodes=2, devices=1, with_slurm=True) as cluster:
        yield cluster


def _inventory(cluster, tmp: Path, **slurm: str) -> Path:
    from orchestrator.sim import slurm as sim_slurm

    text = sim_slurm.inventory_path(cluster.name).read_text()
    extra = "".join(f", {k}: {v}" for k, v in slurm.items())
    text = re.sub(r"(slurm: \{[^}]*)\}", lambda m: m.group(1) + extra + "}", text)
    path = tmp / f"slurm-{len(slurm)}.yaml"
    path.write_text(text + "job: {model: tiny}\n")
    return path


def _slurm(job: str) -> dict:
    res = cli("status", job, "--json")
    assert res.returncode == 0, res.stderr
    import json

    return json.loads(res.stdout)["slurm"]


def _launch(inventory: Path, dataset: Path, *extra: str) -> str:
    res = cli("launch", "pretrain", "-i", str(inventory), "--set", f"job.train_dataset={dataset}", "--detach",
              *extra, timeout=400)  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    assert re.search(r"slurm: job \d+ holds", res.stdout + res.stderr), res.stdout + res.stderr
    return latest_job()


def _stepping(job: str) -> bool:
    st = status_of(job)
    assert st["state"] in ("staging", "starting", "running"), (
        st["state"],
        st.get("root_cause"),
        st.get("message"),
    )
    workers = [r for r in ranks_by_name(st).values() if r["rank"] is not None]
    return bool(workers) and all(r["state"] == "running" and r["progress"] and r["progress"]["step"] >= 1
                                 for r in workers)  # fmt: skip


def test_pretrain_to_completion_then_the_allocation_ends(orch_home, slurm_cluster, tmp_path, tiny_dataset):
    job = _launch(_inventory(slurm_cluster, tmp_path), tiny_dataset)
    st = wait_state(job, ("succeeded", "failed"), 300)
    assert st["state"] == "succeeded", (st.get("root_cause"), st.get("message"))
    assert {r["exit_code"] for r in ranks_by_name(st).values()} == {0}
    slurm = wait_for(lambda: (s := _slurm(job))["state"] != "RUNNING" and s, 30, "the allocation to end")
    assert slurm["state"] in ("CANCELLED", "COMPLETED") and slurm["owned"]
    assert_nothing_left(slurm_cluster, job)
    for rank, node in enumerate(slurm_cluster.nodes):  # each rank's checkpoint on the node that ran it
        assert list((node.workdir / "jobs").glob(f"*-pretrain/output/{job}/checkpoint/rank_{rank}/*.ckpt"))


def test_killed_rank_fails_the_job_and_slurm_agrees(orch_home, slurm_cluster, tmp_path, long_dataset):
    job = _launch(_inventory(slurm_cluster, tmp_path), long_dataset)
    wait_for(lambda: _stepping(job), 240, "training steps on every rank")
    node2 = slurm_cluster.nodes[1]
    logs = cli("logs", job, "--rank", "1", "--lines", "3")  # read on the node through a job step
    assert logs.returncode == 0 and logs.stdout, logs.stderr
    assert all(line.startswith(f"[{node2.host} rank-1]") for line in logs.stdout.splitlines())
    victim = ranks_by_name(status_of(job))[f"{node2.host}/rank-1"]
    slurm_cluster.exec(node2.hostname, f"kill -9 {victim['pid']}")
    st = wait_state(job, ("failed",), 120)
    cause = st["root_cause"]
    assert (cause["host"], cause["rank"], cause["exit_code"]) == (node2.host, 1, 137)
    assert_nothing_left(slurm_cluster, job)
    index = Path(wait_for(lambda: status_of(job).get("logs_index"), 60, "logs collected after the failure"))
    assert all((index.parent / n.host / "logs").is_dir() for n in slurm_cluster.nodes)  # through job steps
    slurm = wait_for(lambda: (s := _slurm(job))["state"] != "RUNNING" and s, 30, "the allocation to end")
    assert slurm["state"] == "CANCELLED"  # we ended it: the job is over
    out = cli("status", job)
    assert "root cause: rank-1 on" in out.stdout and f"slurm job {slurm['job_id']}: CANCELLED" in out.stdout


def test_collect_logs_and_stop_by_hand_end_the_allocation(orch_home, slurm_cluster, tmp_path, long_dataset):
    job = _launch(_inventory(slurm_cluster, tmp_path), long_dataset)
    wait_for(lambda: _stepping(job), 240, "training steps on every rank")
    got = cli("collect-logs", job, "--out", str(tmp_path / "logs"))  # while it runs, through job steps
    assert got.returncode == 0, got.stderr
    for node in slurm_cluster.nodes:
        assert list((tmp_path / "logs" / job / node.host / "logs").glob("rank_*/stdout.log")), node.host
    assert (tmp_path / "logs" / job / "INDEX.md").is_file()
    stopped = cli("stop", job, "--grace", "2")
    assert stopped.returncode == 0, stopped.stderr + stopped.stdout
    assert status_of(job)["state"] == "stopped"
    assert_nothing_left(slurm_cluster, job)
    slurm = wait_for(lambda: (s := _slurm(job))["state"] != "RUNNING" and s, 30, "the allocation to end")
    assert slurm["state"] == "CANCELLED"  # scancel: the allocation we submitted ends with the job


def test_restart_runs_inside_the_same_allocation(orch_home, slurm_cluster, tmp_path, tiny_dataset):
    job = _launch(_inventory(slurm_cluster, tmp_path), tiny_dataset, "--max-restarts", "1")
    first = _slurm(job)["job_id"]
    wait_for(lambda: _stepping(job), 240, "training steps on every rank")
    victim = ranks_by_name(status_of(job))[f"{slurm_cluster.nodes[0].host}/rank-0"]
    slurm_cluster.exec(slurm_cluster.nodes[0].hostname, f"kill -9 {victim['pid']}")
    st = wait_state(job, ("succeeded", "failed"), 400)
    assert st["state"] == "succeeded", (st.get("root_cause"), st.get("message"))
    assert st["attempt"] == 2
    assert _slurm(job)["job_id"] == first  # the second attempt ran in the first one's allocation
    assert_nothing_left(slurm_cluster, job)


def test_time_limit_kill_is_reported_as_such(orch_home, slurm_cluster, tmp_path, tmp_path_factory):
    dataset = _demo_dataset(tmp_path_factory, 2048)
    # 100 epochs: far more steps than one minute allows on any machine (one epoch takes ~30 s here)
    job = _launch(_inventory(slurm_cluster, tmp_path, time_limit="1"), dataset, "--set", "job.epochs=100")
    st = wait_state(job, ("failed", "succeeded"), 300)
    assert st["state"] == "failed"
    cause = st["root_cause"]
    assert cause["what"] == "slurm" and "time limit" in cause["reason"] and "TIMEOUT" in cause["reason"], (
        cause
    )
    assert _slurm(job)["state"] == "TIMEOUT"
    assert_nothing_left(slurm_cluster, job)
