"""Deciding what each node needs (from its scan) and how the bytes travel (pure; no I/O but hashing).

A node needs a file unless it holds it identically; a ``.part`` it holds is trusted up to its size
when that prefix hashes like the source's. Nodes that need the same files form a relay chain (the
controller sends once, each node forwards to the next); the others get direct pushes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from orchestrator.transfer.manifest import Item
from orchestrator.transfer.model import Target

PrefixCheck = Callable[[Item, int, str], bool]


@dataclass
class NodeNeeds:
    """One target and what its node lacks: ``send`` maps rel -> trusted prefix length. ``session`` is
    the node's open receiver session (``remote.Session``) that the route then uses."""

    target: Target
    send: dict[str, int] = field(default_factory=dict)
    same: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)
    session: Any = field(default=None, repr=False, compare=False)

    @property
    def busy(self) -> bool:
        return bool(self.send or self.strays)

    @property
    def resumed(self) -> int:
        return sum(self.send.values())


@dataclass(frozen=True)
class Route:
    """``relay``: the nodes in chain order; ``direct``: one node."""

    kind: str
    nodes: tuple[NodeNeeds, ...]


def needs_of(target: Target, answer: dict, prefix_ok: PrefixCheck, session: Any = None) -> NodeNeeds:
    """What ``target``'s node lacks, from its ``scan`` answer."""
    out = NodeNeeds(target, strays=list(answer.get("strays", [])), session=session)
    for item in target.items:
        state = answer["files"].get(item.entry.rel, {})
        if state.get("same"):
            out.same.append(item.entry.rel)
            continue
        part = state.get("part_size", 0)
        trusted = part if part and prefix_ok(item, part, state.get("part_sha256", "")) else 0
        out.send[item.entry.rel] = trusted
    return out


def _signature(target: Target) -> tuple:
    return tuple(sorted((i.entry.rel, i.entry.sha256, i.entry.size, i.entry.mtime_ns) for i in target.items))


def plan_routes(needs: Sequence[NodeNeeds], mode: str) -> list[Route]:
    """Chains of the busy nodes that want the same files (unless ``direct``), direct pushes otherwise.

    Local nodes are never chained (they are this machine); ``auto`` and ``relay`` behave alike.
    """
    busy = [n for n in needs if n.busy]
    groups: dict[tuple, list[NodeNeeds]] = {}
    for n in busy:
        relayable = mode != "direct" and not getattr(n.target.node, "local", False)
        key = _signature(n.target) if relayable else ("direct", id(n))
        groups.setdefault(key, []).append(n)
    routes = []
    for members in groups.values():
        if len(members) > 1:
            routes.append(Route("relay", tuple(members)))
        else:
            routes.extend(Route("direct", (m,)) for m in members)
    return routes


def stream_items(route: Route) -> list[tuple[Item, int]]:
    """(item, offset) of every file any node of ``route`` needs, from the smallest trusted prefix."""
    out = []
    for item in route.nodes[0].target.items:
        wanting = [n.send[item.entry.rel] for n in route.nodes if item.entry.rel in n.send]
        if wanting:
            out.append((item, min(wanting)))
    return out
