"""Helpers of the push tests: nodes, random files, and a receiver stream built in memory."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterable, Optional

from orchestrator.inventory.model import NodeSpec, SshSettings
from orchestrator.transfer.manifest import Item
from orchestrator.transfer.node_receiver import encode_frame


def node(
    host: str, workdir: Path, *, local: bool = False, devices: tuple[int, ...] = (0,), ssh=None
) -> NodeSpec:
    """A NodeSpec for tests (a local node runs the receiver with this interpreter)."""
    import sys

    return NodeSpec(host=host, name=None, devices=devices, device_ips=(), ssh=ssh or SshSettings(),
                    workdir=str(workdir), python=sys.executable, env=(), local=local)  # fmt: skip


def random_file(path: Path, size: int, mtime_s: Optional[int] = 1_600_000_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    if mtime_s is not None:
        os.utime(path, (mtime_s, mtime_s))
    return path


def stream_of(items: Iterable[tuple[Item, int]], end: bool = True, cut: Optional[int] = None) -> io.BytesIO:
    """The frames a controller sends for (item, offset) pairs; ``cut`` truncates it (an interruption)."""
    out = bytearray()
    for item, offset in items:
        out += encode_frame(item.entry.header(offset))
        out += item.source.read_bytes()[offset:]
    if end:
        out += encode_frame({"op": "end"})
    return io.BytesIO(bytes(out[:cut] if cut is not None else out))
