"""The offline flow as data (both plans, the steps, the dry run), each node's shards, and local pulls."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from orchestrator.errors import InputError, PlanError, TransportError
from orchestrator.plan import make_plan
from orchestrator.reshard import nodefiles
from orchestrator.reshard.flow import needs_offline, plan_flow, render
from orchestrator.reshard.needs import node_ranks, shard_targets
from orchestrator.transport import LocalTransport
from tests.plan.helpers import A2, make_inventory

HOSTS = ("10.0.0.1", "10.0.0.2")


def _inventory(**kw):
    kw.setdefault("load_checkpoint", "/data/ckpt/full.ckpt")
    return make_inventory(A2, hosts=HOSTS, train_dataset="/data/train.mindrecord", **kw)


def _yaml(node) -> dict:
    return yaml.safe_load(node.yaml_text)


def test_two_nodes_without_shared_storage_need_the_offline_flow():
    assert needs_offline(make_plan(_inventory(), "pretrain"), ())
    assert not needs_offline(make_plan(_inventory(), "pretrain", ["job.auto_trans_ckpt=false"]), ())
    assert not needs_offline(make_plan(_inventory(load_checkpoint=None), "pretrain"), ())
    one = make_inventory(A2, hosts=HOSTS[:1], load_checkpoint="/data/c.ckpt", train_dataset="/d/t.mindrecord")
    assert not needs_offline(make_plan(one, "pretrain"), ())  # 8 devices: MindFormers does it
    shared = _inventory(shared_paths=("/mnt/share",), overrides=(("job.output_dir", "/mnt/share/out"),))
    assert not needs_offline(make_plan(shared, "pretrain"), ("/mnt/share",))


def test_flow_plans_a_strategy_run_and_a_job_that_loads_the_pushed_shards(tmp_path):
    flow = plan_flow(_inventory(), "pretrain", ["parallel.mp=8"], tmp_path / "work")
    for node in flow.strategy_plan.nodes:
        y = _yaml(node)
        assert (y["only_save_strategy"], y["auto_trans_ckpt"], y["load_checkpoint"]) == (True, False, "")
        assert y["parallel_config"]["model_parallel"] == 8
    dest = dict(flow.dest)
    for node in flow.final_plan.nodes:
        y = _yaml(node)
        assert (y["only_save_strategy"], y["auto_trans_ckpt"]) == (False, False)
        assert y["load_checkpoint"] == dest[node.host] == f"{node.job_dir}/inputs/load_checkpoint/transformed"
    # the transformed folder is pushed per node by the flow, never whole by the launch
    assert not [t for t in flow.final_plan.transfers if "load_checkpoint" in t.dest]
    assert [t.kind for t in flow.final_plan.transfers if "train_dataset" in t.dest] == ["input"] * 4
    assert node_ranks(flow.final_plan) == {HOSTS[0]: tuple(range(8)), HOSTS[1]: tuple(range(8, 16))}


def test_output_dir_is_read_from_the_top_level_line_of_the_rendered_yaml():
    from dataclasses import replace

    from orchestrator.reshard.strategy_files import node_output_dir

    node = make_plan(_inventory(), "pretrain").nodes[0]
    assert node_output_dir(node) == _yaml(node)["output_dir"]  # the template's absolute path
    nested = "model:\n  output_dir: /elsewhere\n"
    assert (
        node_output_dir(replace(node, yaml_text=nested + "output_dir: 'out dir'\n"))
        == f"{node.job_dir}/out dir"
    )
    assert node_output_dir(replace(node, yaml_text=nested)) == f"{node.job_dir}/output"  # none at top level


def test_dry_run_names_every_step_path_and_command(tmp_path):
    text = render(plan_flow(_inventory(), "pretrain", [], tmp_path / "w", python="/venv/bin/python"))
    job = "/opt/spark/jobs/test-pretrain"
    for want in (
        "1. strategy-run: launch pretrain on 16 devices with only_save_strategy: True",
        f"10.0.0.2: {job}/output/strategy/ckpt_strategy_rank_8.ckpt .. ckpt_strategy_rank_15.ckpt",
        f"2. gather: copy the strategy files to {tmp_path}/w/strategy/",
        f"/venv/bin/python -m orchestrator.reshard.offline transform /data/ckpt/full.ckpt {tmp_path}/w/transformed "
        f"--dst-strategy {tmp_path}/w/strategy",
        f"10.0.0.1 <- rank_0 .. rank_7 -> {job}/inputs/load_checkpoint/transformed",
        "5. launch: launch pretrain with auto_trans_ckpt: False",
    ):
        assert want in text, want


def _shards(root: Path, ranks: int) -> Path:
    for r in range(ranks):
        (root / f"rank_{r}").mkdir(parents=True)
        (root / f"rank_{r}" / f"checkpoint_{r}.ckpt").write_bytes(bytes([r]) * 64)
    return root


def test_each_node_is_sent_only_the_rank_folders_it_runs(tmp_path):
    flow = plan_flow(_inventory(), "pretrain", [], tmp_path / "w")
    nodes = _inventory().nodes
    targets = shard_targets(flow.final_plan, nodes, _shards(tmp_path / "t", 16), dict(flow.dest))
    got = {t.host: sorted(i.entry.rel for i in t.items) for t in targets}
    assert got[HOSTS[1]] == sorted(f"rank_{r}/checkpoint_{r}.ckpt" for r in range(8, 16))
    assert {t.host: t.dest for t in targets} == dict(flow.dest)
    with pytest.raises(PlanError, match="ranks 0..15"):
        shard_targets(flow.final_plan, nodes, _shards(tmp_path / "u", 8), dict(flow.dest))


def test_fetch_copies_once_keeps_mtime_and_refuses_a_corrupt_copy(tmp_path):
    node_out = tmp_path / "node" / "output"
    (node_out / "checkpoint" / "rank_0").mkdir(parents=True)
    (node_out / "checkpoint" / "rank_0" / "a-1_2.ckpt").write_bytes(b"x" * 100)
    (node_out / "strategy").mkdir()
    (node_out / "strategy" / "ckpt_strategy_rank_0.ckpt").write_bytes(b"s")
    os.utime(node_out / "strategy" / "ckpt_strategy_rank_0.ckpt", (1000.0, 1000.0))
    t = LocalTransport("n1")
    assert nodefiles.list_output(t, "python3", str(tmp_path / "missing")) == []
    listed = nodefiles.list_output(t, "python3", str(node_out))
    assert [f.rel for f in listed] == ["checkpoint/rank_0/a-1_2.ckpt", "strategy/ckpt_strategy_rank_0.ckpt"]
    hashed = nodefiles.hash_files(t, "python3", listed)
    local = tmp_path / "here"
    assert [nodefiles.fetch(t, f, local / f.rel) for f in hashed] == [True, True]
    assert (local / "strategy" / "ckpt_strategy_rank_0.ckpt").stat().st_mtime == 1000.0
    assert [nodefiles.fetch(t, f, local / f.rel) for f in hashed] == [False, False]
    (local / hashed[0].rel).write_bytes(b"y" * 100)  # same size, other bytes: fetched again
    assert nodefiles.fetch(t, hashed[0], local / hashed[0].rel)
    lie = nodefiles.RemoteFile("n1", str(node_out), hashed[0].rel, 100, 1.0, "0" * 64)
    with pytest.raises(TransportError, match="corrupted"):
        nodefiles.fetch(t, lie, tmp_path / "other" / "x.ckpt")
    assert not (tmp_path / "other" / "x.ckpt").exists()


def test_flow_without_a_checkpoint_is_refused(tmp_path):
    with pytest.raises(InputError, match="job.load_checkpoint"):
        plan_flow(_inventory(load_checkpoint=None), "pretrain", [], tmp_path)


def test_cli_dry_run_notes_when_shared_storage_makes_the_flow_optional(repo_root, tmp_path):
    from click.testing import CliRunner

    from orchestrator.cli.cmd_checkpoint import command

    inv = str(repo_root / "inventories" / "atlas-800-2nodes.yaml")  # output_dir on /mnt/share
    args = [
        "flow",
        inv,
        "--task",
        "pretrain",
        "--set",
        "job.load_checkpoint=/d/c.ckpt",
        "--set",
        "model.seq_length=8192",  # 13B at 32K fits no Atlas 800 layout (dense attention)
        "--work",
        str(tmp_path),
    ]
    shared = CliRunner().invoke(command, args)
    assert shared.exit_code == 0, shared.output
    assert "4. push: each node gets only the rank folders it runs" in shared.output
    assert "the flow is optional" in shared.output
    local = CliRunner().invoke(command, [*args, "--set", "job.output_dir=output"])
    assert local.exit_code == 0 and "optional" not in local.output
