"""Which shards each node needs: after resharding for a plan, node k gets exactly the rank folders of
the ranks it runs (the plan's rank table: e.g. ranks [8k, 8k+8) with eight devices per node)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from orchestrator.checkpoint import checkpoint_targets, inspect_checkpoint
from orchestrator.errors import PlanError
from orchestrator.transfer import Target


def rank_hosts(plan: Any) -> dict[int, str]:
    """``{rank: host}`` of every worker in ``plan``."""
    return {rank: node.host for node in plan.nodes for rank in node.ranks}


def node_ranks(plan: Any) -> dict[str, tuple[int, ...]]:
    """``{host: ranks it runs}``, in plan order."""
    return {node.host: tuple(node.ranks) for node in plan.nodes}


def check_shards(ranks: Sequence[int], plan: Any, where: str) -> None:
    """PlanError unless the shards are exactly ranks 0..world-1 of ``plan``."""
    if sorted(ranks) != list(range(plan.world_size)):
        raise PlanError(f"{where} holds shards for ranks {sorted(ranks)}, but the job runs ranks "
                        f"0..{plan.world_size - 1}: transform it for this plan's strategy")  # fmt: skip


def shard_targets(plan: Any, nodes: Sequence[Any], shards: Path, dest: dict[str, str]) -> list[Target]:
    """One push target per node: its own ``rank_<R>/`` folders of ``shards`` under ``dest[host]`` (a rank
    folder keeps exactly one checkpoint; other rank folders there are emptied of checkpoints)."""
    ckpt = inspect_checkpoint(shards)
    check_shards(range(ckpt.shards), plan, str(shards))
    ranks = rank_hosts(plan)
    by_host = {n.host: n for n in nodes}
    out = []
    for host in node_ranks(plan):
        out += checkpoint_targets(ckpt, [by_host[host]], dest[host], ranks=ranks)
    return out
