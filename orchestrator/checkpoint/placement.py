"""Where checkpoint files go: ``<dest>/rank_<R>/<name>.ckpt`` on the node that runs rank R.

A complete checkpoint goes to ``rank_0`` on every node (MindFormers reshards it when the job loads
it). Per-rank shards go each to the node running that rank, and their count must equal the job's
world size. Ranks follow the rank table (the plan's order: nodes by string order of host, devices in
order). Every rank folder the push fills keeps exactly one ``.ckpt``; other ``rank_*`` folders'
checkpoints are removed, so the node's folders stay contiguous.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from orchestrator.checkpoint.layout import LocalCheckpoint
from orchestrator.errors import PlanError
from orchestrator.ranktable import build_rank_table
from orchestrator.ranktable.model import NodeDevices
from orchestrator.transfer import Item, Target, build_items
from orchestrator.transfer.node_store import HashCache


def rank_hosts(nodes: Sequence[Any], version: str = "1.0") -> dict[int, str]:
    """{rank: host} as the plan numbers ranks (rank table order)."""
    table = build_rank_table(
        [NodeDevices(server_id=n.host, devices=tuple((d, "") for d in n.devices)) for n in nodes], version
    )
    return {int(d.rank_id): s.server_id for s in table.servers for d in s.devices}


def placement(ckpt: LocalCheckpoint, ranks: dict[int, str]) -> dict[str, list[tuple[int, int]]]:
    """{host: [(rank folder, shard index)]}; PlanError when shards and ranks do not match."""
    hosts = sorted(set(ranks.values()), key=lambda h: min(r for r, x in ranks.items() if x == h))
    if ckpt.complete:
        return {h: [(0, 0)] for h in hosts}
    if ckpt.shards != len(ranks):
        raise PlanError(
            f"{ckpt.source} has {ckpt.shards} rank shards but the job runs {len(ranks)} ranks: reshard it "
            "for this layout (mindspore.transform_checkpoints) or give a complete checkpoint"
        )
    out: dict[str, list[tuple[int, int]]] = {h: [] for h in hosts}
    for rank, host in sorted(ranks.items()):
        out[host].append((rank, rank))
    return out


def checkpoint_targets(ckpt: LocalCheckpoint, nodes: Sequence[Any], dest: str,
                       ranks: Optional[dict[int, str]] = None, cache: Optional[HashCache] = None) -> list[Target]:  # fmt: skip
    """One push target per node holding that node's rank folders of ``ckpt`` under ``dest``."""
    ranks = ranks if ranks is not None else rank_hosts(nodes)
    where = placement(ckpt, ranks)
    pairs = [(f, f"rank_{r if not ckpt.complete else 0}/{f.name}") for r, f in enumerate(ckpt.files)]
    items: list[Item] = build_items(pairs, cache)
    targets = []
    for node in nodes:
        mine = [(folder, items[shard]) for folder, shard in where.get(node.host, [])]
        if not mine:
            continue
        exclusive = tuple((f"rank_{folder}", (item.entry.rel.split("/", 1)[1],)) for folder, item in mine)
        targets.append(Target(node, dest, tuple(i for _, i in mine), exclusive + (("rank_*", ()),)))
    return targets
