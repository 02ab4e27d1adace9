"""Two CPU jobs at once on this machine (the embedded default's local node, stand-in ranks): on the
``cpu`` profile devices are rank slots, so jobs on slots 0-1 and 2-3 run together, each with its own
scheduler port, run folder and logs; a third on slots 1-2 is refused before anything is written, naming
both jobs and the slots they hold. The agents run in a private scope (other agents on this host unseen)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from orchestrator.agent import node_agent
from orchestrator.inventory import parse_inventory
from orchestrator.inventory.defaults import default_inventory_text
from orchestrator.jobs.state import JobDir
from orchestrator.launch.start import launch
from orchestrator.launch.stop import stop_job
from orchestrator.plan.planner import make_plan
from orchestrator.transport.group import GroupError
from tests.agent.conftest import job_pids
from tests.launch.conftest import FAKE_RANK


@pytest.fixture
def local(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(node_agent.ENV_SCOPE, f"concurrent-{tmp_path.name}")
    data = tmp_path / "train.mindrecord"
    data.write_bytes(b"\0" * 64)
    Path(f"{data}.db").write_bytes(b"\0" * 64)
    return tmp_path, data


def _plan(tmp_path: Path, data: Path, slots: list[int]):
    text = default_inventory_text().replace("~/.orchestrate/local-node", str(tmp_path / "node"))
    text = text.replace("devices: [0, 1]", f"devices: {slots}")
    inv = parse_inventory(text, str(tmp_path / "inv.yaml"))
    plan = make_plan(inv, "pretrain", [f"job.train_dataset={data}"])
    argv = (sys.executable, str(FAKE_RANK), "--steps", "600", "--step-s", "0.1")
    nodes = tuple(
        dataclasses.replace(n, launches=tuple(dataclasses.replace(x, argv=argv) for x in n.launches))
        for n in plan.nodes
    )
    return dataclasses.replace(plan, nodes=nodes), inv


def test_two_cpu_jobs_on_disjoint_rank_slots_run_together(local):
    tmp_path, data = local
    started = []
    try:
        for slots in ([0, 1], [2, 3]):
            started.append(launch(*_plan(tmp_path, data, slots)))
        first, second = (s.job.job_id for s in started)
        assert all(len(job_pids(j)) == 4 for j in (first, second))  # supervisor, scheduler, 2 ranks each
        logs = [{p.log for p in s.record.processes} for s in started]
        assert not logs[0] & logs[1]
        assert all(f"/runs/{s.job.job_id}/" in log for s, own in zip(started, logs) for log in own)
        ports = [s.job.plan().sched_port for s in started]
        assert ports[0] != ports[1]

        with pytest.raises(GroupError) as refused:
            launch(*_plan(tmp_path, data, [1, 2]))
        text = str(refused.value)
        assert refused.value.exit_code == 5, text
        assert (
            f"{first} (running, 3 processes) holds device 1" in text
            and f"{second} (running, 3 processes) holds device 2" in text
        )
        assert len(list((tmp_path / "home" / "jobs").iterdir())) == 2  # nothing recorded for the refused job
    finally:
        for s in started:
            stop_job(JobDir(s.job.job_id), grace=2.0)
    assert all(job_pids(s.job.job_id) == [] for s in started)
