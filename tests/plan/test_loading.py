"""How a plan loads job.load_checkpoint: read the layout on this machine, load directly when the job's
layout does not shard weights, reshard only when source and target differ (files only, no MindSpore)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.errors import InputError
from orchestrator.plan.plan_io import load_plan, write_plan
from orchestrator.plan.planner import make_plan
from tests.plan.helpers import A2, CPU, make_inventory

DATA = "/d/t.mindrecord"


def _ckpt(path: Path, name: str = "x.ckpt") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / name).write_bytes(b"weights")
    return path / name


def dp_pretrain_output(root: Path, ranks: int = 2) -> Path:
    """What a data-parallel pretrain leaves: checkpoint/rank_R/ with two steps each, an empty strategy/."""
    for r in range(ranks):
        for step in (5, 10):
            _ckpt(root / "checkpoint" / f"rank_{r}", f"iFlytekSpark_tiny_rank_{r}-1_{step}.ckpt")
        (root / "checkpoint" / f"rank_{r}" / "meta.json").write_text("{}")
    (root / "strategy").mkdir()
    return root / "checkpoint"


def sharded_output(root: Path, ranks: int = 8) -> Path:
    for r in range(ranks):
        _ckpt(root / "checkpoint" / f"rank_{r}", f"spark_rank_{r}-1_10.ckpt")
        _ckpt(root / "strategy", f"ckpt_strategy_rank_{r}.ckpt")
    return root / "checkpoint"


def cpu(**kw):
    return make_inventory(CPU, devices=2, ips=False, model="tiny", train_dataset=DATA, **kw)


def _tree(plan) -> dict:
    return yaml.safe_load(plan.nodes[0].yaml_text)


def _argv_ckpt(plan) -> str:
    argv = plan.nodes[0].launches[1].argv  # the first worker (the scheduler comes first on CPU)
    return argv[argv.index("--load_checkpoint") + 1]


@pytest.mark.parametrize("task", ["finetune", "lora", "pretrain"])
def test_data_parallel_job_loads_rank_0s_newest_file_directly(tmp_path, task):
    ckpt = dp_pretrain_output(tmp_path / "out")
    plan = make_plan(cpu(), task, [f"job.load_checkpoint={ckpt}"])
    c = plan.checkpoint
    assert (c.layout, c.case, c.auto_trans_ckpt, c.ranks) == ("replicas", "direct", False, 2)
    assert c.load == str(ckpt / "rank_0" / "iFlytekSpark_tiny_rank_0-1_10.ckpt")
    job = plan.nodes[0].job_dir
    node_file = f"{job}/inputs/load_checkpoint/iFlytekSpark_tiny_rank_0-1_10.ckpt"
    tree = _tree(plan)
    assert (tree["auto_trans_ckpt"], tree["load_checkpoint"], _argv_ckpt(plan)) == (
        False,
        node_file,
        node_file,
    )
    assert "src_strategy_path_or_dir" not in tree
    shipped = [(t.source, t.dest) for t in plan.transfers if "load_checkpoint" in t.dest]
    assert shipped == [(c.load, node_file)]  # one file, not every rank folder
    assert plan.notes == (c.note,) and "does not shard weights" in c.note and "rank_0's" in c.note


def test_complete_file_and_rank_0_only_load_directly(tmp_path):
    for given, expect in (
        (_ckpt(tmp_path / "a", "full.ckpt"), "full.ckpt"),
        (_ckpt(tmp_path / "b" / "rank_0", "only-1_3.ckpt").parent.parent, "only-1_3.ckpt"),
    ):
        c = make_plan(cpu(), "finetune", [f"job.load_checkpoint={given}"]).checkpoint
        assert (c.layout, c.case, c.auto_trans_ckpt, Path(c.load).name) == (
            "complete",
            "direct",
            False,
            expect,
        )


def test_sharded_layout_reshards_a_complete_checkpoint_from_a_rank_0_folder(tmp_path):
    ckpt = dp_pretrain_output(tmp_path / "out")
    plan = make_plan(make_inventory(A2, train_dataset=DATA), "finetune", [f"job.load_checkpoint={ckpt}"])
    c = plan.checkpoint
    assert (c.case, c.auto_trans_ckpt, c.sharded_target, c.as_rank_folder) == ("reshard", True, True, True)
    job = plan.nodes[0].job_dir
    folder = f"{job}/inputs/load_checkpoint/iFlytekSpark_tiny_rank_0-1_10"
    assert (_tree(plan)["load_checkpoint"], _tree(plan)["auto_trans_ckpt"]) == (folder, True)
    dests = [t.dest for t in plan.transfers if "load_checkpoint" in t.dest]
    assert dests == [f"{folder}/rank_0/iFlytekSpark_tiny_rank_0-1_10.ckpt"]  # MindFormers wants rank_0/


def test_shards_travel_with_their_strategy_and_are_resharded(tmp_path):
    ckpt = sharded_output(tmp_path / "job")
    plan = make_plan(
        make_inventory(A2, train_dataset=DATA), "finetune", [f"job.load_checkpoint={tmp_path / 'job'}"]
    )
    c = plan.checkpoint
    assert (c.layout, c.ranks, c.case, c.load, c.strategy) == (
        "shards",
        8,
        "reshard",
        str(ckpt),
        str(tmp_path / "job" / "strategy"),
    )
    job = plan.nodes[0].job_dir
    tree = _tree(plan)
    assert tree["src_strategy_path_or_dir"] == f"{job}/inputs/src_strategy/strategy"
    assert tree["load_checkpoint"] == f"{job}/inputs/load_checkpoint/checkpoint"
    kept = make_plan(make_inventory(A2, train_dataset=DATA), "finetune",
                     [f"job.load_checkpoint={ckpt}", "job.auto_trans_ckpt=false"]).checkpoint  # fmt: skip
    assert (kept.case, kept.auto_trans_ckpt) == ("per-rank", False)


@pytest.mark.parametrize("task", ["finetune", "predict", "eval"])
def test_shards_for_a_job_that_needs_complete_weights_are_refused_with_the_merge_command(tmp_path, task):
    ckpt = sharded_output(tmp_path / "job", ranks=2)
    with pytest.raises(InputError) as err:
        make_plan(cpu(), task, [f"job.load_checkpoint={ckpt}"])
    (p,) = err.value.problems
    assert (p.file, p.field) == (str(ckpt), "job.load_checkpoint") and "orchestrate checkpoint merge" in p.fix


def test_auto_trans_ckpt_asked_for_on_a_data_parallel_layout_is_refused(tmp_path):
    ckpt = _ckpt(tmp_path, "full.ckpt")
    with pytest.raises(
        InputError, match="job.auto_trans_ckpt: the layout dp2 mp1 pp1 does not shard weights"
    ):
        make_plan(cpu(), "finetune", [f"job.load_checkpoint={ckpt}", "job.auto_trans_ckpt=true"])


def test_a_checkpoint_not_on_this_machine_is_used_as_given_with_a_warning():
    plan = make_plan(cpu(), "finetune", ["job.load_checkpoint=/elsewhere/ckpt"])
    assert (plan.checkpoint.layout, plan.checkpoint.case, plan.checkpoint.auto_trans_ckpt) == (
        "unknown",
        "as-given",
        False,
    )
    assert any("/elsewhere/ckpt is not on this machine" in w for w in plan.warnings)
    a2 = make_plan(
        make_inventory(A2, train_dataset=DATA), "finetune", ["job.load_checkpoint=/elsewhere/ckpt"]
    )
    assert (a2.checkpoint.case, a2.checkpoint.auto_trans_ckpt) == ("reshard", True)


def test_rank_folders_kept_as_they_are_load_per_rank(tmp_path):
    """The offline flow's final plan: its transformed rank folders (no strategy beside) are this layout's."""
    inv = make_inventory(A2, train_dataset=DATA)
    for r in range(8):
        _ckpt(tmp_path / "transformed" / f"rank_{r}", f"checkpoint_{r}.ckpt")
    c = make_plan(
        inv, "finetune", [f"job.load_checkpoint={tmp_path / 'transformed'}", "job.auto_trans_ckpt=false"]
    ).checkpoint
    assert (c.case, c.auto_trans_ckpt, c.load) == ("per-rank", False, str(tmp_path / "transformed"))
    with pytest.raises(InputError, match="2 rank folders for 8 ranks"):
        make_plan(
            inv,
            "finetune",
            [f"job.load_checkpoint={dp_pretrain_output(tmp_path / 'dp')}", "job.auto_trans_ckpt=false"],
        )


def test_more_than_8_devices_without_shared_output_is_the_offline_flow(tmp_path):
    ckpt = _ckpt(tmp_path, "full.ckpt")
    inv = make_inventory(A2, hosts=("10.0.0.1", "10.0.0.2"), train_dataset=DATA)
    c = make_plan(inv, "finetune", [f"job.load_checkpoint={ckpt}"]).checkpoint
    assert (c.case, c.auto_trans_ckpt, c.as_rank_folder) == ("reshard-offline", True, False)


def test_the_decision_round_trips_through_plan_json(tmp_path):
    plan = make_plan(cpu(), "finetune", [f"job.load_checkpoint={dp_pretrain_output(tmp_path / 'out')}"])
    write_plan(plan, tmp_path / "plan")
    assert load_plan(tmp_path / "plan") == plan
