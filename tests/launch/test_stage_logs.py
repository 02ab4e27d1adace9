"""Staging and log reading through the local transport (no SSH): fast, real files, real node Python."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.inventory import parse_inventory
from orchestrator.inventory.defaults import default_inventory_text
from orchestrator.jobs.state import ProcessRef
from orchestrator.launch import logs
from orchestrator.launch.nodes import JobNodes
from orchestrator.launch.spec import spec_path
from orchestrator.launch.stage import code_bundle, stage_node
from orchestrator.plan.planner import make_plan
from orchestrator.transport import LocalTransport


@pytest.fixture
def local(tmp_path):
    text = default_inventory_text().replace("~/.orchestrate/local-node", str(tmp_path / "node"))
    inv = parse_inventory(text, str(tmp_path / "inv.yaml"))
    return inv, make_plan(inv, "pretrain", ["job.train_dataset="]), str(tmp_path / "node")


def test_stage_ships_code_once_and_writes_the_spec(local):
    inv, plan, workdir = local
    node = plan.nodes[0]
    t = LocalTransport(node.host)
    first = stage_node(t, plan, node, "20260101-000000-pretrain-0001", workdir)
    second = stage_node(t, plan, node, "20260101-000000-pretrain-0002", workdir)
    assert (first.code_cached, second.code_cached) == (False, True) and first.code_dir == second.code_dir
    sha = code_bundle().sha256
    assert first.code_dir.endswith(f"/code/{sha}")
    assert (Path(first.code_dir) / "iflytekspark" / "run.py").is_file()
    spec = json.loads(open(spec_path(workdir, "20260101-000000-pretrain-0002")).read())
    assert (
        spec["job_id"] == "20260101-000000-pretrain-0002"
        and spec["scheduler"]["env"]["MS_ROLE"] == "MS_SCHED"
    )
    assert [r["rank"] for r in spec["ranks"]] == [0, 1]
    assert all(r["env"]["PYTHONPATH"] == first.code_dir for r in spec["ranks"])
    assert open(f"{node.job_dir}/config/pretrain.yaml").read() == node.yaml_text


def test_logs_are_prefixed_and_followed_by_offset(local, tmp_path):
    inv, _, _ = local
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("one\ntwo\nthree\n")
    b.write_text("x\npartial")
    procs = [ProcessRef("127.0.0.1", "rank-0", 0, str(a)), ProcessRef("127.0.0.1", "rank-1", 1, str(b))]
    offsets, partial = {}, {}
    with JobNodes(inv.nodes) as nodes:
        chunks, errors = logs.read_logs(nodes, procs, offsets, lines=2)
        assert not errors
        assert list(logs.prefixed(chunks, partial)) == ["[127.0.0.1 rank-0] two", "[127.0.0.1 rank-0] three",
                                                        "[127.0.0.1 rank-1] x"]  # fmt: skip
        with open(a, "a") as f:
            f.write("four\n")
        with open(b, "a") as f:
            f.write(" line\n")
        chunks, _ = logs.read_logs(nodes, procs, offsets)
        assert list(logs.prefixed(chunks, partial)) == [
            "[127.0.0.1 rank-0] four",
            "[127.0.0.1 rank-1] partial line",
        ]


def test_stage_starts_the_job_in_the_same_round_trip_once_the_code_is_there(tmp_path, monkeypatch):
    from orchestrator.agent.client import NodeBusy
    from orchestrator.agent.node import base as node_base
    from orchestrator.launch import agent_rpc
    from tests.agent.conftest import job_pids
    from tests.launch.conftest import local_stand_in_plan, placeholder_dataset

    monkeypatch.setenv(node_base.ENV_SCOPE, f"stage-start-{tmp_path.name}")
    plan, _inv = local_stand_in_plan(tmp_path, placeholder_dataset(tmp_path))
    node, workdir = plan.nodes[0], str(tmp_path / "node")
    t = LocalTransport(node.host)
    ids = [f"20260101-000000-pretrain-000{i}" for i in range(3)]
    try:
        shipped = stage_node(t, plan, node, ids[0], workdir, start=False)  # code missing: nothing started
        assert not shipped.code_cached and shipped.started is None and job_pids(ids[0]) == []
        both = stage_node(t, plan, node, ids[1], workdir, start=False)
        assert both.code_cached and both.started is not None
        assert [p.name for p in both.started.processes] == ["scheduler", "rank-0", "rank-1"]
        assert {p.pid for p in both.started.processes} <= set(job_pids(ids[1]))  # running now
        with pytest.raises(NodeBusy, match=ids[1]):  # the same devices: the start in stage refuses
            stage_node(t, plan, node, ids[2], workdir, start=False)
        assert job_pids(ids[2]) == []
    finally:
        agent_rpc.stop_confirmed(t, node.python, workdir, ids[1], grace=1.0)
    assert job_pids(ids[1]) == []
