"""The node receiver on a node: where it lives, shipping it, and asking what a node already holds."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from orchestrator.transfer import node_receiver, stream
from orchestrator.transfer.model import Target
from orchestrator.transport import Transport

RECEIVER_SOURCE = Path(node_receiver.__file__)


@lru_cache(maxsize=1)
def receiver_bytes() -> tuple[bytes, str]:
    data = RECEIVER_SOURCE.read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:12]


def receiver_path(workdir: str) -> str:
    """``<workdir>/bin/node_receiver-<hash>.py``: the hash in the name means a node never runs another version."""
    return f"{workdir.rstrip('/')}/bin/node_receiver-{receiver_bytes()[1]}.py"


def node_cache(workdir: str) -> str:
    return f"{workdir.rstrip('/')}/cache/hashes.json"


def argv(node: Any, verb: str) -> list[str]:
    return [node.python, receiver_path(node.workdir), verb]


def ensure_receiver(t: Transport, node: Any) -> None:
    """Put the receiver on the node unless this version is already there."""
    path = receiver_path(node.workdir)
    if t.run(["test", "-f", path], check=False, timeout=30).exit_code != 0:
        t.put_bytes(receiver_bytes()[0], path, mode=0o755)


def exclusive_map(target: Target) -> dict[str, list[str]]:
    return {folder: list(keep) for folder, keep in target.exclusive}


def scan(t: Transport, target: Target, verify: bool = False) -> dict:
    """The receiver's ``scan`` answer for ``target`` (installing the receiver first if needed)."""
    ensure_receiver(t, target.node)
    conf = {
        "dest": target.dest,
        "cache": node_cache(target.node.workdir),
        "verify": verify,
        "files": [vars(i.entry) for i in target.items],
        "exclusive": exclusive_map(target),
    }
    return stream.call(t, argv(target.node, "scan"), conf)
