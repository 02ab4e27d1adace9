"""Rank logs from every node, each line prefixed by host and rank; ``follow`` keeps reading new bytes.

One small read per log and poll, run with the node's Python: it prints ``<size>\\n`` then the bytes
from ``offset`` (or, at first, the last ``lines`` lines), so following costs one round trip per node.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional

from orchestrator.jobs.state import JobRecord, ProcessRef
from orchestrator.launch.nodes import JobNodes
from orchestrator.transport import Transport

# argv: offset (-1: the tail), lines, then log paths; prints per log "<path>\0<size>\0<text>\0".
_READ = """import os, sys
off, lines = int(sys.argv[1]), int(sys.argv[2])
for path in sys.argv[3:]:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            start = off if off >= 0 else max(0, size - 65536)
            f.seek(min(start, size))
            data = f.read()
    except OSError:
        size, data = 0, b""
    if off < 0:
        data = b"\\n".join(data.split(b"\\n")[-lines - 1:]) if lines else b""
    sys.stdout.write(path + "\\0" + str(size) + "\\0" + data.decode("utf-8", "replace").replace("\\0", "") + "\\0")
"""


@dataclass(frozen=True)
class Chunk:
    proc: ProcessRef
    text: str


def prefix(proc: ProcessRef) -> str:
    return f"[{proc.host} {proc.name}]"


def select(record: JobRecord, rank: Optional[int] = None) -> list[ProcessRef]:
    """The job's processes, or only ``rank``'s."""
    procs = [p for p in record.processes if rank is None or p.rank == rank]
    if rank is not None and not procs:
        raise ValueError(
            f"job {record.job_id} has no rank {rank} (ranks: {[p.rank for p in record.processes]})"
        )
    return procs


def _read(
    t: Transport, python: str, procs: list[ProcessRef], offsets: dict[str, int], lines: int
) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for off in sorted({offsets.get(p.log, -1) for p in procs}):
        paths = [p.log for p in procs if offsets.get(p.log, -1) == off]
        res = t.run([python, "-c", _READ, str(off), str(lines), *paths], timeout=30)
        parts = res.stdout.split("\0")
        for i in range(0, len(parts) - 2, 3):
            out[parts[i]] = (int(parts[i + 1]), parts[i + 2])
    return out


def read_logs(
    nodes: JobNodes, procs: list[ProcessRef], offsets: dict[str, int], lines: int = 50
) -> tuple[list[Chunk], dict[str, str]]:
    """New text of each log since ``offsets`` (updated in place; absent: the last ``lines`` lines).

    Returns the chunks in process order and the errors of nodes that did not answer.
    """
    by_host: dict[str, list[ProcessRef]] = {}
    for p in procs:
        by_host.setdefault(p.host, []).append(p)
    res = nodes.fan(lambda t: _read(t, nodes.node(t.host).python, by_host[t.host], offsets, lines), by_host)
    chunks = []
    for p in procs:
        got = res.results.get(p.host, {}).get(p.log)
        if got is None:
            continue
        size, text = got
        offsets[p.log] = size
        if text:
            chunks.append(Chunk(p, text))
    return chunks, {h: str(e).splitlines()[0] for h, e in res.failures.items()}


def prefixed(chunks: Iterable[Chunk], partial: dict[str, str]) -> Iterator[str]:
    """Complete lines of ``chunks`` with their prefix; an unfinished last line waits in ``partial``."""
    for c in chunks:
        text = partial.pop(c.proc.log, "") + c.text
        *complete, rest = text.split("\n")
        if rest:
            partial[c.proc.log] = rest
        for line in complete:
            yield f"{prefix(c.proc)} {line}"


def stream(nodes: JobNodes, procs: list[ProcessRef], lines: int, follow: bool, done: Callable[[], bool],
           poll_s: float = 1.0, on_error: Callable[[dict[str, str]], None] = lambda e: None) -> Iterator[str]:  # fmt: skip
    """The last ``lines`` of each log, then (``follow``) new lines until ``done()`` and nothing new."""
    offsets: dict[str, int] = {}
    partial: dict[str, str] = {}
    while True:
        chunks, errors = read_logs(nodes, procs, offsets, lines)
        if errors:
            on_error(errors)
        yield from prefixed(chunks, partial)
        if not follow or (done() and not chunks):
            break
        time.sleep(poll_s)
    for log, rest in partial.items():
        proc = next(p for p in procs if p.log == log)
        yield f"{prefix(proc)} {rest}"
