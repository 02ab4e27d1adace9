"""End to end on the simulated cluster (real sshd, real node agent) with the real model on CPU.

2 nodes x 1 rank pretrain the tiny iFlytekSpark through the dynamic cluster. Faults: a killed rank,
a cut link, a killed controller, a second launch into busy nodes, and bad SSH settings.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.launch.conftest import (
    ORCHESTRATE,
    assert_nothing_left,
    cli,
    latest_job,
    node_job_pids,
    one_rank_per_node,
    ranks_by_name,
    status_of,
    wait_for,
    wait_state,
)

pytestmark = pytest.mark.cluster  # and mindspore on the tests that train


def _launch_detached(inventory: Path, dataset: Path) -> str:
    res = cli("launch", "pretrain", "-i", str(inventory), "--set", f"job.train_dataset={dataset}", "--detach")
    assert res.returncode == 0, res.stderr + res.stdout
    return latest_job()


def _all_running(job_id: str, with_steps: bool = False):
    st = status_of(job_id)
    workers = [r for r in ranks_by_name(st).values() if r["rank"] is not None]
    ok = workers and all(r["state"] == "running" for r in workers)
    return ok and (not with_steps or all(r["progress"] and r["progress"]["step"] >= 1 for r in workers))


@pytest.mark.mindspore
def test_pretrain_to_completion(orch_home, sim_cluster, sim_inventory, tiny_dataset):
    res = cli("launch", "pretrain", "-i", str(sim_inventory), "--set", f"job.train_dataset={tiny_dataset}")
    assert res.returncode == 0, res.stderr + res.stdout
    job = latest_job()
    assert "succeeded" in res.stdout
    st = cli("status", job, "--json")
    assert st.returncode == 0
    status = status_of(job)
    assert status["state"] == "succeeded"
    codes = {k: r["exit_code"] for k, r in ranks_by_name(status).items()}
    assert set(codes.values()) == {0} and len(codes) == 3  # scheduler + 2 ranks
    for rank, node in enumerate(sim_cluster.nodes):  # checkpoints on the node that ran the rank
        ckpts = list((node.workdir / "jobs").glob(f"*-pretrain/output/{job}/checkpoint/rank_{rank}/*.ckpt"))
        assert ckpts, f"no checkpoint of rank {rank} on {node.hostname}"
        other = list((node.workdir / "jobs").glob(f"*-pretrain/output/*/checkpoint/rank_{1 - rank}"))
        assert not other, f"rank {1 - rank} wrote on {node.hostname}"
    logs = cli("logs", job, "--rank", "1", "--lines", "5")
    assert logs.returncode == 0 and all(line.startswith(f"[{sim_cluster.nodes[1].host} rank-1]")
                                        for line in logs.stdout.splitlines())  # fmt: skip
    assert_nothing_left(sim_cluster, job)


@pytest.mark.mindspore
def test_killed_rank_fails_the_job_and_stops_every_node(orch_home, sim_cluster, sim_inventory, tiny_dataset):
    job = _launch_detached(sim_inventory, tiny_dataset)
    wait_for(lambda: _all_running(job, with_steps=True), 180, "training steps on every rank")
    victim = ranks_by_name(status_of(job))[f"{sim_cluster.nodes[1].host}/rank-1"]
    sim_cluster.exec(sim_cluster.nodes[1].hostname, f"kill -9 {victim['pid']}")
    st = wait_state(job, ("failed",), 120)
    cause = st["root_cause"]
    assert (cause["host"], cause["rank"], cause["exit_code"]) == (sim_cluster.nodes[1].host, 1, 137)
    assert_nothing_left(sim_cluster, job)
    peers = [r for k, r in ranks_by_name(st).items() if r["name"] != "rank-1"]
    assert all(r["state"] == "exited" for r in peers), peers
    index = Path(wait_for(lambda: status_of(job).get("logs_index"), 60, "logs collected after the failure"))
    assert (
        f"**rank-1 on {sim_cluster.nodes[1].host}**: exited 137" in index.read_text()
    )  # collected by itself
    assert all((index.parent / n.host / "logs").is_dir() for n in sim_cluster.nodes)
    out = cli("status", job)
    assert "root cause: rank-1 on" in out.stdout and "logs collected after the failure" in out.stdout


@pytest.mark.mindspore
def test_cut_link_is_detected_and_the_rest_stopped(orch_home, sim_cluster, sim_inventory, tiny_dataset):
    from orchestrator.sim import faults

    job = _launch_detached(sim_inventory, tiny_dataset)
    wait_for(lambda: _all_running(job), 120, "every rank running")
    node1, node2 = sim_cluster.nodes
    faults.link_down(sim_cluster.name, node2.hostname)
    try:
        st = wait_state(job, ("failed",), 150)
        cause = st["root_cause"]
        assert (cause["host"], cause["what"]) == (node2.host, "node") and "not answering" in cause["reason"]
        wait_for(lambda: not node_job_pids(sim_cluster, node1, job), 15, "node1 stopped")
    finally:
        faults.link_up(sim_cluster.name, node2.hostname)
    res = cli("stop", job, "--grace", "3")  # node2 is back: its leftovers go too
    assert res.returncode == 0, res.stderr + res.stdout
    assert_nothing_left(sim_cluster, job)
    assert status_of(job)["state"] == "failed"


@pytest.mark.mindspore
def test_controller_killed_then_reattach_refuse_second_launch_and_stop(orch_home, sim_cluster, sim_inventory,
                                                                       tiny_dataset):  # fmt: skip
    before = set(os.listdir(orch_home / "jobs")) if (orch_home / "jobs").exists() else set()
    cmd = [
        ORCHESTRATE,
        "launch",
        "pretrain",
        "-i",
        str(sim_inventory),
        "--set",
        f"job.train_dataset={tiny_dataset}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        job = wait_for(lambda: (set(os.listdir(orch_home / "jobs")) - before) if (orch_home / "jobs").exists() else None,
                       60, "the job folder").pop()  # fmt: skip
        wait_for(
            lambda: (orch_home / "jobs" / job / "status.json").exists() and _all_running(job), 120, "running"
        )
        monitor = int((orch_home / "jobs" / job / "monitor.pid").read_text())
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and ...
        os.kill(monitor, signal.SIGKILL)  # ... its detached monitor: nobody watches the job any more
    finally:
        proc.kill()
        proc.wait()
    assert all(node_job_pids(sim_cluster, n, job) for n in sim_cluster.nodes)  # the job goes on
    again = cli("launch", "pretrain", "-i", str(sim_inventory), "--set", f"job.train_dataset={tiny_dataset}")
    assert again.returncode == 5 and "refuses" in again.stderr and job in again.stderr, again.stderr
    res = cli("status", job, "--json")
    assert res.returncode == 0, res.stderr
    assert '"monitor_alive": true' in res.stdout and status_of(job)["state"] == "running"
    stop = cli("stop", job)
    assert stop.returncode == 0, stop.stderr + stop.stdout
    assert stop.stdout.count("nothing left") == 2
    assert_nothing_left(sim_cluster, job)
    assert status_of(job)["state"] == "stopped"


@pytest.mark.parametrize("fault,expect", [
    ("unknown-key", "unknown host key"),
    ("wrong-user", "authentication failed for user 'nobody'"),
    ("unreachable", "no answer within"),
])  # fmt: skip
def test_bad_ssh_is_refused_before_anything_starts(orch_home, sim_cluster, tmp_path, fault, expect):
    dataset = tmp_path / "train.mindrecord"  # only checked to exist: the launch stops before staging
    dataset.write_bytes(b"")
    Path(f"{dataset}.db").write_bytes(b"")
    text = Path(sim_cluster.inventory).read_text()
    if fault == "unknown-key":
        (tmp_path / "known_hosts").write_text("")
        text = one_rank_per_node(text, known_hosts=str(tmp_path / "known_hosts"))
    elif fault == "wrong-user":
        text = one_rank_per_node(text, user="nobody")
    else:
        dead = sim_cluster.nodes[1].host.rsplit(".", 1)[0] + ".250"
        text = one_rank_per_node(text.replace(sim_cluster.nodes[1].host, dead)).replace(
            "known_hosts:", "connect_timeout: 2, known_hosts:"
        )
    inv = tmp_path / "bad.yaml"
    inv.write_text(text)
    jobs = orch_home / "jobs"
    before = sorted(os.listdir(jobs)) if jobs.exists() else []
    res = cli("launch", "pretrain", "-i", str(inv), "--set", f"job.train_dataset={dataset}", "--detach")
    assert res.returncode == 4, res.stderr + res.stdout
    assert expect in res.stderr
    assert (sorted(os.listdir(jobs)) if jobs.exists() else []) == before  # no job was created
