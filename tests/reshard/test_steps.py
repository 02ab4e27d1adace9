"""Choosing the step every rank saved, and the per-rank files a pull takes (pure, fast)."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError
from orchestrator.reshard.nodefiles import RemoteFile
from orchestrator.reshard.pull import _owned, select_files
from orchestrator.reshard.steps import select_step, step_of


def _names(rank: int, *steps: str) -> list[str]:
    return [f"iFlytekSpark_tiny_rank_{rank}-{s}.ckpt" for s in steps]


def test_step_names_parse_and_order_numerically_not_by_name():
    assert step_of("iFlytekSpark_13b_rank_3-2_10.ckpt") == (2, 10)
    assert step_of("checkpoint_0.ckpt") is None
    sel = select_step({0: _names(0, "1_5", "1_10"), 1: _names(1, "1_10", "1_5")}, 2, "here")
    assert (sel.tag, sel.name(0), sel.name(1)) == ("1_10", _names(0, "1_10")[0], _names(1, "1_10")[0])


def test_newest_step_held_by_every_rank_wins():
    sel = select_step({0: _names(0, "1_5", "1_10", "2_5"), 1: _names(1, "1_5", "1_10")}, 2, "here")
    assert sel.tag == "1_10"


def test_a_given_step_must_be_on_every_rank():
    names = {0: _names(0, "1_5", "1_10"), 1: _names(1, "1_5")}
    assert select_step(names, 2, "here", "1_5").name(1) == _names(1, "1_5")[0]
    with pytest.raises(InputError, match="missing on rank.* 1"):
        select_step(names, 2, "here", "1_10")
    with pytest.raises(InputError, match="EPOCH_STEP"):
        select_step(names, 2, "here", "ten")


def test_missing_ranks_and_disjoint_steps_are_named():
    with pytest.raises(InputError, match=r"rank\(s\) 1 of 2"):
        select_step({0: _names(0, "1_5")}, 2, "here")
    with pytest.raises(InputError, match="rank_0: 1_5; rank_1: 1_6"):
        select_step({0: _names(0, "1_5"), 1: _names(1, "1_6")}, 2, "here")


def test_single_unnamed_checkpoints_are_taken_as_they_are():
    sel = select_step({0: ["checkpoint_0.ckpt"], 1: ["checkpoint_1.ckpt"]}, 2, "here")
    assert (sel.step, sel.tag, sel.name(1)) == (None, "only", "checkpoint_1.ckpt")


def _rf(host: str, rel: str) -> RemoteFile:
    return RemoteFile(host, "/job/output", rel, 10, 1.0)


def test_pull_takes_each_rank_from_its_own_node_and_only_the_chosen_step():
    # Shared output_dir: both nodes list everything; rank 1 ran on node b.
    every = [_rf(h, rel) for h in ("a", "b") for rel in (
        "checkpoint/rank_0/x_rank_0-1_5.ckpt", "checkpoint/rank_0/x_rank_0-1_10.ckpt",
        "checkpoint/rank_1/x_rank_1-1_10.ckpt", "strategy/ckpt_strategy_rank_0.ckpt",
        "strategy/ckpt_strategy_rank_1.ckpt", "strategy/merged.ckpt")]  # fmt: skip
    owned = _owned({"a": every[:6], "b": every[6:]}, {0: "a", 1: "b"})
    assert {(f.rel, f.host) for f in owned} == {
        ("checkpoint/rank_0/x_rank_0-1_5.ckpt", "a"), ("checkpoint/rank_0/x_rank_0-1_10.ckpt", "a"),
        ("checkpoint/rank_1/x_rank_1-1_10.ckpt", "b"), ("strategy/ckpt_strategy_rank_0.ckpt", "a"),
        ("strategy/ckpt_strategy_rank_1.ckpt", "b")}  # fmt: skip
    sel, files = select_files(owned, 2, "job", None)
    assert sel.tag == "1_10"
    assert sorted(f.rel for f in files) == [
        "checkpoint/rank_0/x_rank_0-1_10.ckpt", "checkpoint/rank_1/x_rank_1-1_10.ckpt",
        "strategy/ckpt_strategy_rank_0.ckpt", "strategy/ckpt_strategy_rank_1.ckpt"]  # fmt: skip
