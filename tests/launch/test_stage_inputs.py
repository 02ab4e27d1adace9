"""The job's inputs go through the push engine: sent once, skipped while identical, re-sent when changed.
Local node (no SSH), real files and the real node receiver."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator.inventory import parse_inventory
from orchestrator.inventory.defaults import default_inventory_text
from orchestrator.launch.nodes import JobNodes
from orchestrator.launch.spec import spec_path
from orchestrator.launch.stage import figures, input_summary, input_targets, push_inputs, stage_all
from orchestrator.plan.planner import make_plan
from orchestrator.transfer import NodeReport, PushResult


@pytest.fixture
def job(tmp_path, monkeypatch):
    """A local node in ``tmp_path``, a plan whose dataset (a MindRecord file and its index) is there too."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the controller's hash cache
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.mindrecord").write_bytes(os.urandom(300_000))
    (data / "train.mindrecord.db").write_bytes(b"index" * 100)
    text = default_inventory_text().replace("~/.orchestrate/local-node", str(tmp_path / "node"))
    inv = parse_inventory(text, str(tmp_path / "inv.yaml"))
    plan = make_plan(inv, "pretrain", [f"job.train_dataset={data / 'train.mindrecord'}"])
    with JobNodes(inv.nodes) as nodes:
        yield plan, nodes, data


def test_inputs_are_skipped_when_identical_and_resent_when_changed(job):
    plan, nodes, data = job
    (target,) = input_targets(plan, nodes.nodes)  # the file and its .db index: one folder, one target
    assert sorted(i.entry.rel for i in target.items) == ["train.mindrecord", "train.mindrecord.db"]
    total = sum(p.stat().st_size for p in data.iterdir())
    host = nodes.hosts[0]

    first, failed = push_inputs(nodes, plan)
    assert not failed and (first[host].files, first[host].sent, first[host].skipped) == (2, total, 0)
    on_node = Path(target.dest) / "train.mindrecord"
    assert on_node.read_bytes() == (data / "train.mindrecord").read_bytes()
    assert on_node.stat().st_mtime_ns == (data / "train.mindrecord").stat().st_mtime_ns

    again, _ = push_inputs(nodes, plan)
    assert (again[host].sent, again[host].skipped) == (0, total)

    (data / "train.mindrecord.db").write_bytes(b"INDEX" * 100)  # same size, other bytes and mtime
    changed, _ = push_inputs(nodes, plan)
    assert (changed[host].sent, changed[host].skipped) == (500, total - 500)
    assert (Path(target.dest) / "train.mindrecord.db").read_bytes() == b"INDEX" * 100


def test_a_corrupted_input_on_the_node_is_repaired(job):
    plan, nodes, data = job
    push_inputs(nodes, plan)
    (target,) = input_targets(plan, nodes.nodes)
    on_node = Path(target.dest) / "train.mindrecord"
    on_node.write_bytes(b"x" * 10)  # another size: the node's manifest no longer matches
    got, failed = push_inputs(nodes, plan)
    assert not failed and got[nodes.hosts[0]].sent == 300_000
    assert on_node.read_bytes() == (data / "train.mindrecord").read_bytes()


def test_stage_all_reports_input_bytes_and_writes_the_spec(job):
    plan, nodes, data = job
    total = sum(p.stat().st_size for p in data.iterdir())
    first = stage_all(nodes, plan, "20260101-000000-pretrain-0001").raise_on_failure()
    second = stage_all(nodes, plan, "20260101-000000-pretrain-0002").raise_on_failure()
    (r1,), (r2,) = first.results.values(), second.results.values()
    assert (r1.inputs.sent, r2.inputs.sent, r2.inputs.skipped) == (total, 0, total)
    assert r1.bytes - r2.bytes == total  # the same generated files (ids of one length), no inputs
    assert input_summary([r2]) == f"inputs: 0 B sent, {total / 2**10:.1f} KiB already on the nodes"
    workdir = nodes.nodes[0].workdir
    spec = json.loads(Path(spec_path(workdir, "20260101-000000-pretrain-0002")).read_text())
    assert spec["job_id"] == "20260101-000000-pretrain-0002"


def test_stage_pushes_only_to_nodes_that_lack_an_input(job, monkeypatch):
    from orchestrator.launch import stage as stage_mod

    plan, nodes, data = job
    host = nodes.hosts[0]
    stage_all(nodes, plan, "20260101-000000-pretrain-0001").raise_on_failure()
    pushed: list = []
    real = stage_mod.push

    def counting(targets, *a, **kw):
        pushed.append(sorted({t.host for t in targets}))
        return real(targets, *a, **kw)

    monkeypatch.setattr(stage_mod, "push", counting)
    held = stage_all(nodes, plan, "20260101-000000-pretrain-0002").raise_on_failure().results[host]
    assert pushed == [] and held.inputs_ready  # the agent's stage said the node holds them: no push session
    (data / "train.mindrecord.db").write_bytes(b"INDEX" * 100)
    changed = stage_all(nodes, plan, "20260101-000000-pretrain-0003").raise_on_failure().results[host]
    assert pushed == [[host]] and not changed.inputs_ready and changed.inputs.sent == 500


def test_a_node_that_misses_an_input_is_a_staging_failure(job):
    plan, nodes, _ = job
    targets = input_targets(plan, nodes.nodes)
    host, dest = targets[0].host, targets[0].dest
    result = PushResult(
        [NodeReport(host, dest, "direct", files=2, bytes_written=7, error="disk full")], 7, 0.1
    )
    got, failed = figures(targets, result)
    assert got[host].sent == 7 and "disk full" in str(failed[host])
