"""The push's typed inputs and outputs: what goes to which node, options, and per-node reports."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from orchestrator.errors import TransportError
from orchestrator.transfer.manifest import Item

MODES = ("auto", "relay", "direct")
RELAY_HOPS = ("tcp", "ssh")


@dataclass(frozen=True)
class Target:
    """Files for one node: ``items`` land under ``dest`` (a node path).

    ``exclusive`` lists folders (relative to ``dest``) whose other ``*.ckpt`` files are removed after a
    complete push, with the names to keep: a rank folder then holds exactly one checkpoint.
    """

    node: Any  # a NodeSpec
    dest: str
    items: tuple[Item, ...]
    exclusive: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def host(self) -> str:
        return self.node.host


@dataclass(frozen=True)
class PushOptions:
    """``mode``: ``relay`` chains nodes that get the same files (``auto``: when they are remote),
    ``direct`` sends from the controller to each node. ``verify`` re-hashes node files ignoring the
    nodes' hash caches. ``limit_rate`` caps the controller's sending (bytes/s). ``relay_hop``: how a
    node forwards to the next: ``tcp`` (plain, to the next node's cluster address; integrity still
    holds through the sha256 sent over SSH) or ``ssh`` (``ssh -W`` to the next node's loopback
    listener: encrypted, for data networks that are not trusted; each node's user needs an SSH key
    the next node accepts and its host key in known_hosts)."""

    mode: str = "auto"
    max_parallel: int = 8
    verify: bool = False
    limit_rate: Optional[float] = None
    shared_paths: tuple[str, ...] = ()
    progress: bool = False
    timeout: float = 3600.0
    relay_hop: str = "tcp"


@dataclass
class NodeReport:
    """What happened on one node. ``route``: direct, relay (chain position), shared, or a fallback."""

    host: str
    dest: str
    route: str = "direct"
    files: int = 0
    skipped: int = 0
    sent: int = 0
    bytes_written: int = 0
    bytes_resumed: int = 0
    removed: list[str] = field(default_factory=list)
    ok: bool = False
    error: Optional[str] = None


@dataclass
class PushResult:
    nodes: list[NodeReport]
    controller_bytes: int
    seconds: float
    chains: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(n.ok for n in self.nodes)

    def check(self) -> PushResult:
        """Self when every node holds every file, else PushFailed."""
        if not self.ok:
            raise PushFailed(self)
        return self

    @property
    def bytes_written(self) -> int:
        return sum(n.bytes_written for n in self.nodes)

    def to_json(self) -> str:
        data = {
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "controller_bytes": self.controller_bytes,
            "bytes_written": self.bytes_written,
            "files_skipped": sum(n.skipped for n in self.nodes),
            "files_sent": sum(n.sent for n in self.nodes),
            "chains": self.chains,
            "warnings": self.warnings,
            "nodes": [asdict(n) for n in self.nodes],
        }
        return json.dumps(data, indent=1, sort_keys=True)


class PushFailed(TransportError):
    """Some nodes did not end up with every file; the message lists them."""

    def __init__(self, result: PushResult):
        self.result = result
        bad = [n for n in result.nodes if not n.ok]
        super().__init__(f"push failed on {len(bad)} of {len(result.nodes)} node(s):\n"
                         + "\n".join(f"  {n.host}: {n.error}" for n in bad))  # fmt: skip
