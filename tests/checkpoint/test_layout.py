"""Checkpoint shapes (checked before any push) and where each rank's files go."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.checkpoint import checkpoint_targets, inspect_checkpoint, placement, rank_hosts
from orchestrator.errors import InputError, PlanError
from orchestrator.transfer.node_store import HashCache
from tests.transfer.helpers import node, random_file


def _sharded(root: Path, n: int) -> Path:
    for r in range(n):
        random_file(root / f"rank_{r}" / f"net_rank_{r}-1_2.ckpt", 64)
    return root


def test_complete_checkpoint_shapes(tmp_path):
    f = random_file(tmp_path / "a" / "model.ckpt", 10)
    assert inspect_checkpoint(f).files == (f,)
    assert inspect_checkpoint(tmp_path / "a").files == (f,)
    one = _sharded(tmp_path / "b", 1)
    ck = inspect_checkpoint(one)
    assert ck.complete and ck.files == (one / "rank_0" / "net_rank_0-1_2.ckpt",)


def test_sharded_checkpoint_in_rank_order(tmp_path):
    ck = inspect_checkpoint(_sharded(tmp_path / "m", 11))
    assert ck.shards == 11 and [f.parent.name for f in ck.files] == [f"rank_{r}" for r in range(11)]


def test_every_problem_is_reported_at_once(tmp_path):
    root = _sharded(tmp_path / "m", 4)
    for f in (root / "rank_2").iterdir():
        f.unlink()
    random_file(root / "rank_1" / "second.ckpt", 8)
    random_file(root / "loose.ckpt", 8)
    (root / "rank_3" / "net_rank_3-1_2.ckpt").rename(root / "rank_3" / "gone.txt")
    (root / "rank_3").rename(root / "rank_5")
    with pytest.raises(InputError) as err:
        inspect_checkpoint(root)
    text = str(err.value)
    assert "not contiguous: rank_3 is missing" in text
    assert "rank_1: checkpoint: 2 .ckpt files (net_rank_1-1_2.ckpt, second.ckpt)" in text
    assert "rank_2: checkpoint: 0 .ckpt files (none)" in text
    assert "loose.ckpt" in text and "rank_5: checkpoint: 0 .ckpt" in text


def test_empty_and_non_checkpoint_files_are_refused(tmp_path):
    (tmp_path / "e.ckpt").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        inspect_checkpoint(tmp_path / "e.ckpt")
    with pytest.raises(InputError, match="not a .ckpt"):
        inspect_checkpoint(random_file(tmp_path / "x.txt", 3))


def test_ranks_follow_the_rank_table_string_order_of_hosts(tmp_path):
    nodes = [node("10.0.0.9", tmp_path, devices=(0, 1)), node("10.0.0.10", tmp_path, devices=(0, 1))]
    assert rank_hosts(nodes) == {0: "10.0.0.10", 1: "10.0.0.10", 2: "10.0.0.9", 3: "10.0.0.9"}


def test_complete_goes_to_rank_0_everywhere_shards_to_their_node(tmp_path):
    ranks = {0: "h1", 1: "h1", 2: "h2", 3: "h2"}
    complete = inspect_checkpoint(random_file(tmp_path / "c.ckpt", 10))
    assert placement(complete, ranks) == {"h1": [(0, 0)], "h2": [(0, 0)]}
    shards = inspect_checkpoint(_sharded(tmp_path / "m", 4))
    assert placement(shards, ranks) == {"h1": [(0, 0), (1, 1)], "h2": [(2, 2), (3, 3)]}
    with pytest.raises(PlanError, match="3 rank shards but the job runs 4 ranks.*transform_checkpoints"):
        placement(inspect_checkpoint(_sharded(tmp_path / "three", 3)), ranks)


def test_targets_hold_each_nodes_rank_folders_and_keep_them_exclusive(tmp_path):
    nodes = [node("h1", tmp_path, devices=(0, 1)), node("h2", tmp_path, devices=(0, 1))]
    shards = inspect_checkpoint(_sharded(tmp_path / "m", 4))
    targets = checkpoint_targets(shards, nodes, "/d", cache=HashCache(None))
    assert [[i.entry.rel for i in t.items] for t in targets] == [
        ["rank_0/net_rank_0-1_2.ckpt", "rank_1/net_rank_1-1_2.ckpt"],
        ["rank_2/net_rank_2-1_2.ckpt", "rank_3/net_rank_3-1_2.ckpt"],
    ]
    assert dict(targets[1].exclusive) == {"rank_2": ("net_rank_2-1_2.ckpt",), "rank_3": ("net_rank_3-1_2.ckpt",),
                                          "rank_*": ()}  # fmt: skip
    complete = inspect_checkpoint(random_file(tmp_path / "full.ckpt", 10))
    targets = checkpoint_targets(complete, nodes, "/d", cache=HashCache(None))
    assert [[i.entry.rel for i in t.items] for t in targets] == [["rank_0/full.ckpt"], ["rank_0/full.ckpt"]]
