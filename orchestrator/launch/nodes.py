"""The nodes of one job behind one reusable connection pool, with a parallel per-node runner."""

from __future__ import annotations

from typing import Callable, Iterable, Optional, Sequence, TypeVar

from orchestrator.inventory.model import NodeSpec
from orchestrator.transport import GroupResult, Transport, TransportPool, fan_out

T = TypeVar("T")


class JobNodes:
    """``fan(fn)`` runs ``fn(transport)`` on every node (or ``hosts``) at once over kept-open connections."""

    def __init__(
        self, nodes: Sequence[NodeSpec], pool: Optional[TransportPool] = None, max_workers: int = 32
    ):
        self.nodes = tuple(nodes)
        self.pool = pool or TransportPool()
        self.max_workers = max_workers

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(n.host for n in self.nodes)

    def node(self, host: str) -> NodeSpec:
        return next(n for n in self.nodes if n.host == host)

    def fan(self, fn: Callable[[Transport], T], hosts: Optional[Iterable[str]] = None) -> GroupResult[T]:
        wanted = set(self.hosts if hosts is None else hosts)
        return fan_out([n for n in self.nodes if n.host in wanted], fn, self.max_workers, pool=self.pool)

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> JobNodes:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
