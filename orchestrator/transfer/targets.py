"""Building push targets: the nodes of a push, a destination on each, and a plan's input transfers."""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any, Optional, Sequence

from orchestrator.errors import InputError, Problem
from orchestrator.transfer.manifest import Item, build_items, default_cache_path, source_files
from orchestrator.transfer.model import Target
from orchestrator.transfer.node_store import HashCache


def node_dest(node: Any, dest: str) -> str:
    """``dest`` on ``node``: absolute as given, relative under the node's workdir."""
    return posixpath.normpath(dest if posixpath.isabs(dest) else posixpath.join(node.workdir, dest))


def select_nodes(inventory: Any, hosts: Optional[str]) -> list[Any]:
    """The inventory's nodes, or those named in the comma-separated ``hosts`` (host or name)."""
    if not hosts:
        return list(inventory.nodes)
    wanted = [h.strip() for h in hosts.split(",") if h.strip()]
    known = {n.host: n for n in inventory.nodes} | {n.name: n for n in inventory.nodes if n.name}
    unknown = [h for h in wanted if h not in known]
    if unknown:
        raise InputError([Problem(inventory.source, "--hosts", f"unknown node {h!r}",
                                  f"use one of {', '.join(n.host for n in inventory.nodes)}") for h in unknown])  # fmt: skip
    return list(dict.fromkeys(known[h] for h in wanted))


def targets_from_transfers(
    transfers: Sequence[Any], nodes: Sequence[Any], cache: Optional[HashCache] = None
) -> list[Target]:
    """Push targets for a plan's ``input`` transfers (``Transfer(host, kind, source, dest)``).

    A file goes to ``dest`` exactly (its folder is the target's destination); a folder's files go
    under ``dest``. Sources are hashed once however many nodes get them.
    """
    by_host = {n.host: n for n in nodes}
    cache = cache if cache is not None else HashCache(str(default_cache_path()))
    hashed: dict[tuple[str, str], tuple[Item, ...]] = {}
    out = []
    for x in transfers:
        if x.kind != "input":
            continue
        src = Path(x.source)
        folder, rel = (x.dest, None) if src.is_dir() else posixpath.split(x.dest)
        key = (x.source, rel or "")
        if key not in hashed:
            pairs = source_files(src) if rel is None else [(src, rel)]
            hashed[key] = tuple(build_items(pairs, cache))
        out.append(Target(by_host[x.host], folder, hashed[key]))
    return out
