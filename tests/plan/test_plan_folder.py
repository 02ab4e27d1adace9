"""The plan folder: byte-identical for the same inputs (also with shuffled nodes), round trip, golden
files of one A2 node pretrain plan (UPDATE_GOLDEN=1 rewrites them), transfers and --diff."""

from __future__ import annotations

import os
import random
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.plan.diff import diff_plan_dirs
from orchestrator.plan.plan_io import load_plan, plan_json, write_plan
from orchestrator.plan.planner import make_plan
from tests.plan.helpers import A2, A800, A800_SHORT, CPU, make_inventory

GOLDEN = Path(__file__).parent / "golden" / "a2-one-node-pretrain"


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _golden_inventory():
    return make_inventory(
        A2,
        hosts=("10.0.0.1",),
        name="a2",
        train_dataset="/data/wiki.mindrecord",
        load_checkpoint="/ckpt/iflytekspark_13b",
        env=(("HCCL_IF_IP", "10.0.0.1"),),
    )


def test_same_inputs_give_the_same_bytes(tmp_path):
    hosts = ("10.0.0.9", "10.0.0.10", "10.0.0.11")
    inv = make_inventory(A800, hosts=hosts, train_dataset="/d/x.mindrecord", overrides=A800_SHORT)
    write_plan(make_plan(inv, "finetune", ["parallel.dp=3"]), tmp_path / "a")
    write_plan(make_plan(inv, "finetune", ["parallel.dp=3"]), tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shuffling_the_node_order_changes_nothing(tmp_path, seed):
    hosts = [f"10.0.{i % 3}.{i}" for i in range(1, 6)]
    inv = make_inventory(A2, hosts=hosts, devices=4)
    nodes = list(inv.nodes)
    random.Random(seed).shuffle(nodes)
    shuffled = replace(inv, nodes=tuple(nodes))
    write_plan(make_plan(inv, "pretrain"), tmp_path / "a")
    write_plan(make_plan(shuffled, "pretrain"), tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_plan_json_round_trips(tmp_path):
    plan = make_plan(
        make_inventory(CPU, hosts=("h1", "h2"), devices=2, ips=False, model="tiny"),
        "lora",
        ["model.loss_mask_alignment=reference"],
    )
    write_plan(plan, tmp_path)
    back = load_plan(tmp_path)
    assert back == plan and plan_json(back) == plan_json(plan)


def test_load_plan_refuses_other_schemas(tmp_path):
    (tmp_path / "plan.json").write_text('{"schema": "something/9"}')
    with pytest.raises(InputError, match="expected orchestrate.plan/1"):
        load_plan(tmp_path)


def test_write_plan_replaces_an_earlier_plan_and_refuses_foreign_folders(tmp_path):
    two = make_inventory(A2, hosts=("10.0.0.1", "10.0.0.2"))
    write_plan(make_plan(two, "pretrain"), tmp_path / "p")
    write_plan(make_plan(make_inventory(A2, hosts=("10.0.0.1",)), "pretrain"), tmp_path / "p")
    assert not (tmp_path / "p" / "nodes" / "10.0.0.2").exists()
    assert not (tmp_path / "p" / "rank_table_10.0.0.2.json").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a plan folder"):
        write_plan(make_plan(two, "pretrain"), tmp_path / "other")


def test_plan_folder_layout_and_modes(tmp_path):
    plan = make_plan(
        make_inventory(CPU, hosts=("127.0.0.1",), devices=2, ips=False, model="tiny"), "pretrain"
    )
    write_plan(plan, tmp_path)
    names = set(_files(tmp_path))
    assert names == {
        "plan.json",
        "rank_table.json",
        "rank_table_127.0.0.1.json",
        "summary.txt",
        "nodes/127.0.0.1/pretrain.yaml",
        "nodes/127.0.0.1/commands.sh",
        "nodes/127.0.0.1/env_scheduler.sh",
        "nodes/127.0.0.1/env_rank_0.sh",
        "nodes/127.0.0.1/env_rank_1.sh",
    }
    assert (tmp_path / "nodes/127.0.0.1/env_rank_0.sh").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "nodes/127.0.0.1/commands.sh").stat().st_mode & 0o777 == 0o755


def test_transfers_push_inputs_unless_shared():
    inv = make_inventory(
        A2,
        hosts=("10.0.0.1", "10.0.0.2"),
        shared_paths=("/shared",),
        train_dataset="/data/wiki.mindrecord",
        load_checkpoint="/shared/ckpt",
    )
    plan = make_plan(inv, "pretrain")
    inputs = [(t.host, t.source, t.dest) for t in plan.transfers if t.kind == "input"]
    job = "/opt/spark/jobs/test-pretrain"
    assert inputs == [
        ("10.0.0.1", "/data/wiki.mindrecord", f"{job}/inputs/train_dataset/wiki.mindrecord"),
        ("10.0.0.1", "/data/wiki.mindrecord.db", f"{job}/inputs/train_dataset/wiki.mindrecord.db"),
        ("10.0.0.2", "/data/wiki.mindrecord", f"{job}/inputs/train_dataset/wiki.mindrecord"),
        ("10.0.0.2", "/data/wiki.mindrecord.db", f"{job}/inputs/train_dataset/wiki.mindrecord.db"),
    ]
    generated = {t.dest for t in plan.transfers if t.kind == "generated" and t.host == "10.0.0.2"}
    assert f"{job}/rank_table.json" in generated and f"{job}/env/env_rank_15.sh" in generated
    assert "/shared/ckpt" in plan.nodes[0].yaml_text


def test_warnings_for_missing_inputs():
    plan = make_plan(make_inventory(A2), "lora")
    assert any("no train_dataset" in w for w in plan.warnings)
    assert any("random weights" in w for w in plan.warnings)


def test_golden_a2_one_node_pretrain(tmp_path):
    write_plan(make_plan(_golden_inventory(), "pretrain"), tmp_path)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        import shutil

        shutil.rmtree(GOLDEN, ignore_errors=True)
        shutil.copytree(tmp_path, GOLDEN)
    assert _files(tmp_path) == _files(GOLDEN), diff_plan_dirs(GOLDEN, tmp_path)


def test_diff_is_empty_for_equal_plans_and_names_changed_lines(tmp_path):
    inv = _golden_inventory()
    write_plan(make_plan(inv, "pretrain"), tmp_path / "a")
    write_plan(make_plan(inv, "pretrain"), tmp_path / "b")
    assert diff_plan_dirs(tmp_path / "a", tmp_path / "b") == ""
    write_plan(make_plan(inv, "pretrain", ["runner_config.epochs=3"]), tmp_path / "b")
    diff = diff_plan_dirs(tmp_path / "a", tmp_path / "b")
    assert "+  epochs: 3" in diff and f"{tmp_path}/b/nodes/10.0.0.1/pretrain.yaml" in diff
