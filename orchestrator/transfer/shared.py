"""Shared storage: is a destination under a declared shared path, and is it really shared?

The check writes a random token into a probe file from one node and reads it back on all others;
a node that does not see it does not share the folder.
"""

from __future__ import annotations

import posixpath
import secrets
from dataclasses import dataclass
from typing import Any, Sequence

from orchestrator.errors import OrchestrateError


@dataclass(frozen=True)
class SharedCheck:
    path: str
    writer: str
    seen_by: tuple[str, ...]
    not_seen_by: tuple[str, ...]

    @property
    def shared(self) -> bool:
        return not self.not_seen_by


def shared_root(path: str, shared_paths: Sequence[str]) -> str | None:
    """The declared shared path that contains ``path``, if any."""
    norm = posixpath.normpath(path)
    for s in shared_paths:
        root = s.rstrip("/") or "/"
        if norm == root or norm.startswith(root.rstrip("/") + "/"):
            return root
    return None


def _existing_parent(t: Any, path: str) -> str:
    while path not in ("/", ""):
        if t.run(["test", "-d", path], check=False, timeout=30).exit_code == 0:
            return path
        path = posixpath.dirname(path)
    return "/"


def verify_shared(pool: Any, nodes: Sequence[Any], path: str) -> SharedCheck:
    """Write a token file under ``path`` (its nearest existing folder) from the first node; read it on the rest."""
    writer = nodes[0]
    t = pool.get(writer)
    folder = _existing_parent(t, path)
    probe = posixpath.join(folder, f".orchestrate-shared-{secrets.token_hex(8)}")
    token = secrets.token_hex(16)
    try:
        t.run(["sh", "-c", 'cat > "$1"', "sh", probe], stdin=token.encode(), timeout=30)
    except OrchestrateError as exc:
        return SharedCheck(
            path, writer.host, (), tuple(n.host for n in nodes[1:]) or (f"{writer.host}: {exc}",)
        )
    seen, missing = [], []
    try:
        for node in nodes[1:]:
            res = pool.get(node).run(["cat", probe], check=False, timeout=30)
            (seen if res.exit_code == 0 and res.stdout == token else missing).append(node.host)
    finally:
        t.run(["rm", "-f", probe], check=False, timeout=30)
    return SharedCheck(path, writer.host, tuple(seen), tuple(missing))
