"""Choosing the nodes of a push and resolving a destination on each (relative: under its workdir)."""

from __future__ import annotations

import posixpath
from typing import Any, Optional

from orchestrator.errors import InputError, Problem


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
