"""On the simulated cluster: `checkpoint pull` and `merge` of a data-parallel job through the CLI, and
steps 2-4 of the offline flow (gather strategy files, transform with MindSpore, push each node its
shards). Files are placed where a job leaves them: ``<job_dir>/output/{checkpoint/rank_N,strategy}/``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from orchestrator.inventory import load_inventory
from orchestrator.plan import make_plan
from orchestrator.reshard.strategy_files import node_output_dir
from orchestrator.sim.state import WORKDIR
from orchestrator.transport import connect

pytestmark = pytest.mark.cluster
ORCHESTRATE = str(Path(sys.executable).with_name("orchestrate"))


@pytest.fixture(scope="module")
def inventory(sim_cluster):
    """The sim inventory with one rank per node and the tiny model."""
    inv = load_inventory(sim_cluster.inventory)
    nodes = tuple(
        dataclasses.replace(n, devices=n.devices[:1], device_ips=n.device_ips[:1]) for n in inv.nodes
    )
    return dataclasses.replace(inv, nodes=nodes, job=dataclasses.replace(inv.job, model="tiny"))


def _host_path(cluster, host: str, node_path: str) -> Path:
    """Where a node's path lies on this machine, to read (each node's WORKDIR is an overlay on it)."""
    sim = next(n for n in cluster.nodes if n.host == host)
    assert node_path.startswith(WORKDIR + "/")
    return sim.workdir / node_path[len(WORKDIR) + 1 :]


def _put(inv, host: str, path: str, data: bytes, mtime: float) -> None:
    """Write a file on a node through SSH (writing under the overlay behind its back is not seen)."""
    t = connect(inv.node(host))
    try:
        t.put_bytes(data, path)
        t.run(["touch", "-m", "-d", f"@{mtime}", path])
    finally:
        t.close()


def _record(plan, inv, job_id: str, home: Path) -> None:
    from orchestrator.jobs.state import JobDir, JobRecord

    job = JobDir(job_id, home / "jobs").create()
    job.save_record(
        JobRecord(job_id, plan.task, time.time(), inv.source, inv.nodes, (), (), (), 1.0, 1.0, 1.0)
    )
    job.save_plan(plan)


def test_pull_then_merge_a_data_parallel_job_from_the_cli(sim_cluster, inventory, tmp_path):
    plan = make_plan(inventory, "pretrain")
    assert plan.world_size == 2
    for node in plan.nodes:
        (rank,) = node.ranks
        folder = f"{node_output_dir(node)}/checkpoint/rank_{rank}"
        for step, mtime in (("1_5", 1000.0), ("1_10", 2000.0)):
            data = f"weights {step}".encode() * 1000
            _put(inventory, node.host, f"{folder}/iFlytekSpark_tiny_rank_{rank}-{step}.ckpt", data, mtime)
        _put(inventory, node.host, f"{folder}/meta.json", b"{}", 3000.0)
    home = tmp_path / "home"
    _record(plan, inventory, "20260101-000000-pretrain-abcd", home)
    env = {**os.environ, "ORCHESTRATE_HOME": str(home)}
    out = tmp_path / "pulled"

    def cli(*args: str) -> dict:
        proc = subprocess.run([ORCHESTRATE, "checkpoint", *args, "--json"], capture_output=True, text=True,
                              env=env, timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    first = cli("pull", "abcd", "--out", str(out))
    assert (first["step"], first["files"], first["fetched"]) == ("1_10", 2, 2)
    got = sorted(str(p.relative_to(out)) for p in out.rglob("*.ckpt"))
    assert got == [f"checkpoint/rank_{r}/iFlytekSpark_tiny_rank_{r}-1_10.ckpt" for r in range(2)]
    rank1 = out / got[1]
    assert rank1.read_bytes() == b"weights 1_10" * 1000 and rank1.stat().st_mtime == 2000.0
    manifest = json.loads((out / "pull.json").read_text())
    assert [f["host"] for f in manifest["files"]] == [n.host for n in plan.nodes]
    assert manifest["files"][0]["sha256"] == hashlib.sha256(b"weights 1_10" * 1000).hexdigest()
    rank1.write_bytes(b"X" * rank1.stat().st_size)  # a damaged local copy is fetched again
    again = cli("pull", "abcd", "--out", str(out))
    assert (again["fetched"], rank1.read_bytes()[:7]) == (1, b"weights")
    merged = cli("merge", str(out), "--keep-optimizer")
    assert (merged["mode"], merged["step"], merged["ranks"]) == ("replicated", "1_10", 2)
    assert Path(merged["out"]).read_bytes() == (out / got[0]).read_bytes()


@pytest.mark.mindspore
def test_offline_flow_gathers_transforms_and_pushes_each_node_its_shards(sim_cluster, inventory, tmp_path):
    import mindspore as ms

    from orchestrator.reshard import flow as offline
    from tests.fixtures.model import TINY, random_weights
    from tests.reshard.sharding import save, split, write_strategy

    full = random_weights({**TINY, "vocab_size": 96}, 4)
    complete = save(ms, full, tmp_path / "src" / "full.ckpt")
    flow = offline.plan_flow(inventory, "pretrain", [], tmp_path / "work", checkpoint=str(complete))
    for node in flow.strategy_plan.nodes:  # what the strategy run leaves on each node (dp1 x mp2 layout)
        (rank,) = node.ranks
        strat = write_strategy(tmp_path / f"ckpt_strategy_rank_{rank}.ckpt", list(full), 1, 2)
        _put(
            inventory, node.host, f"{node_output_dir(node)}/strategy/{strat.name}", strat.read_bytes(), 5000.0
        )
    assert sorted(offline.gather(flow, inventory.nodes)) == [0, 1]
    local = offline.transform(flow)
    result = offline.push_shards(flow, inventory.nodes)
    assert result.ok
    dest, shards = dict(flow.dest), split(full, 1, 2)
    for node in flow.final_plan.nodes:
        (rank,) = node.ranks
        root = _host_path(sim_cluster, node.host, dest[node.host])
        assert sorted(str(p.relative_to(root)) for p in root.rglob("*.ckpt")) == [
            f"rank_{rank}/checkpoint_{rank}.ckpt"
        ]
        on_node = root / f"rank_{rank}" / f"checkpoint_{rank}.ckpt"
        assert on_node.read_bytes() == local[rank].read_bytes()
        params = ms.load_checkpoint(str(on_node))
        for name, value in shards[rank].items():
            np.testing.assert_array_equal(params[name].asnumpy(), value, err_msg=f"rank {rank} {name}")
