"""End to end in the simulated cluster's Ascend mode (needs root): 2 Atlas 800T A2 nodes x 8 NPUs, the
plan's rank-table launch of 16 stand-in ranks (CANN sourced by the launcher, MindFormers' own device
decision, rank-table and NPU checks), a rank killed, the job restarted by ``--max-restarts 1`` once the
NPUs are released, and the logs collected. Nothing here knows it is simulated but the hardware file."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tests.fixtures.sim import ascend_pair, sim_name
from tests.fixtures.sim import orchestrate as _cli

pytestmark = pytest.mark.cluster
BOUND = re.compile(r"rank (\d+) bound device (\d+) \(logical \d+\)")


@pytest.fixture(scope="module")
def a2_pair(tmp_path_factory) -> Iterator[object]:
    yield from ascend_pair(tmp_path_factory.mktemp("a2pair"), "e", 180, step_s=0.25)


def _status(home: Path, job: str) -> dict:
    return json.loads((home / "jobs" / job / "status.json").read_text())


def _wait(check, what: str, timeout: float):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return value


def _min_step(home: Path, job: str) -> int:
    ranks = [r for n in _status(home, job)["nodes"] for r in n["ranks"] if r["rank"] is not None]
    return min([(r["progress"] or {}).get("step", 0) for r in ranks] or [0]) if len(ranks) == 16 else 0


def test_sixteen_stand_in_ranks_killed_restarted_and_collected(a2_pair, tmp_path):
    home, data = tmp_path / "home", tmp_path / "data" / "train.mindrecord"
    data.parent.mkdir()
    data.write_bytes(b"\0" * 64)
    Path(f"{data}.db").write_bytes(b"\0" * 64)  # the stand-in reads no data; the plan needs a dataset
    inventory = yaml.safe_load(a2_pair.inventory.read_text())
    assert inventory["cluster"]["profile"] == "atlas-800t-a2-64g"
    sets = [
        "job.model=tiny",
        f"job.train_dataset={data}",
        "job.total_steps=40",
        "job.save_checkpoint_steps=10",
    ]
    plan = _cli(home, "plan", str(a2_pair.inventory), "--task", "pretrain", "--out", str(tmp_path / "plan"),
                *[x for s in sets for x in ("--set", s)])  # fmt: skip
    assert plan.returncode == 0, plan.stderr + plan.stdout
    assert json.loads((tmp_path / "plan" / "rank_table.json").read_text())["server_count"] == "2"
    res = _cli(
        home, "launch", "pretrain", "--plan", str(tmp_path / "plan"), "--max-restarts", "1", "--detach"
    )
    assert res.returncode == 0, res.stderr + res.stdout
    job = sorted(p.name for p in (home / "jobs").iterdir() if (p / "job.json").exists())[-1]
    _wait(lambda: _min_step(home, job) >= 12, "step 12 (a checkpoint at 10) on all 16 ranks", 240)
    victim = next(r for n in _status(home, job)["nodes"] for r in n["ranks"] if r["name"] == "rank-11")
    a2_pair.exec(a2_pair.nodes[1].hostname, f"kill -9 {victim['pid']}")
    st = _wait(
        lambda: (s := _status(home, job))["state"] in ("succeeded", "failed") and s, "the job's end", 300
    )
    assert st["state"] == "succeeded", (st.get("message"), (st.get("root_cause") or {}).get("log_tail"))
    attempts = json.loads((home / "jobs" / job / "attempts.json").read_text())["attempts"]
    assert len(attempts) == 2 and attempts[1]["resumed_from"] == 10, attempts
    for index, node in enumerate(a2_pair.nodes):  # every rank bound its own NPU, on the node the table says
        logs = sorted((node.workdir / "jobs").glob(f"*-pretrain/runs/{job}/output/log/rank_*/stdout.log"))
        bound = {int(r): int(d) for log in logs for r, d in BOUND.findall(log.read_text(errors="replace"))}
        assert bound == {8 * index + d: d for d in range(8)}, (node.hostname, bound)
        assert all("Start resume training from checkpoint" in log.read_text() for log in logs)
    out = tmp_path / "logs"
    res = _cli(home, "collect-logs", job, "--out", str(out))
    assert res.returncode == 0, res.stderr + res.stdout
    index = next(out.rglob("INDEX.md")).read_text()
    assert "rank-11" in index and a2_pair.nodes[1].host in index


def test_an_a3_node_is_discovered_planned_with_a_v12_table_and_runs(tmp_path):
    """One Atlas 900 A3 node (8 cards x 2 chips): discovery reads the SuperPoD ids from npu-smi, the plan
    writes a 1.2 rank table, and 16 stand-in ranks check their super_device_id against the node's."""
    from orchestrator import sim

    hw = tmp_path / "a3.yaml"
    npus = [{"id": d, "ip": f"192.168.185.{10 + d}"} for d in range(16)]
    hw.write_text(
        yaml.safe_dump({"kind": "atlas-900-a3", "super_pod_id": 3, "step_s": 0.1, "nodes": [{"npus": npus}]})
    )
    name = sim_name("a")
    cluster = sim.up(name, nodes=1, hardware_file=hw)
    try:
        home, data = tmp_path / "home", tmp_path / "train.mindrecord"
        data.write_bytes(b"\0" * 64)
        Path(f"{data}.db").write_bytes(b"\0" * 64)
        sets = [
            "job.model=tiny",
            f"job.train_dataset={data}",
            "job.total_steps=6",
            "job.save_checkpoint_steps=3",
        ]
        plan = _cli(home, "plan", str(cluster.inventory), "--task", "pretrain", "--discover", "--out",
                    str(tmp_path / "plan"), *[x for s in sets for x in ("--set", s)])  # fmt: skip
        assert plan.returncode == 0, plan.stderr + plan.stdout
        table = json.loads((tmp_path / "plan" / "rank_table.json").read_text())
        assert table["version"] == "1.2" and table["super_pod_list"][0]["super_pod_id"] == "3"
        devices = table["server_list"][0]["device"]
        assert [(d["device_id"], d["super_device_id"]) for d in devices] == [
            (str(i), str(i)) for i in range(16)
        ]
        res = _cli(home, "launch", "pretrain", "--plan", str(tmp_path / "plan"))
        assert res.returncode == 0 and "succeeded" in res.stdout, res.stderr + res.stdout
    finally:
        sim.down(name)
