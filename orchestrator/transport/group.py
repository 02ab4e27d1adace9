"""Run one function per node in parallel (bounded thread pool); per-host results, one error for all."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Optional, Sequence, TypeVar

from orchestrator.errors import OrchestrateError
from orchestrator.transport.base import Transport
from orchestrator.transport.pool import TransportPool

T = TypeVar("T")


@dataclass
class GroupResult(Generic[T]):
    """Per-host outcomes of a fan-out, in node order: a value or the exception it raised."""

    hosts: tuple[str, ...]
    results: dict[str, T] = field(default_factory=dict)
    failures: dict[str, BaseException] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def __getitem__(self, host: str) -> T:
        if host in self.failures:
            raise self.failures[host]
        return self.results[host]

    def raise_on_failure(self) -> GroupResult[T]:
        """Self when every host succeeded, else GroupError carrying every failure."""
        if self.failures:
            raise GroupError(self)
        return self


class GroupError(OrchestrateError):
    """Some hosts of a fan-out failed; ``failures`` maps each to its exception."""

    def __init__(self, result: GroupResult[Any]):
        self.result = result
        self.failures = dict(result.failures)
        codes = {getattr(e, "exit_code", 1) for e in self.failures.values()}
        self.exit_code = codes.pop() if len(codes) == 1 else 1
        lines = [f"{len(self.failures)} of {len(result.hosts)} node(s) failed:"]
        lines += [f"  {host}: {_one_line(exc)}" for host, exc in self.failures.items()]
        super().__init__("\n".join(lines))


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.replace("\n", "\n    ")


def fan_out(
    nodes: Sequence[Any],
    fn: Callable[[Transport], T],
    max_workers: int = 32,
    *,
    pool: Optional[TransportPool] = None,
) -> GroupResult[T]:
    """Call ``fn(transport)`` for every node at once (at most ``max_workers`` threads).

    Connections come from ``pool`` (kept open for reuse) or from a pool closed on return. Exceptions,
    connection errors included, are collected per host, never raised here.
    """
    own = pool is None
    pool = pool or TransportPool()
    result: GroupResult[T] = GroupResult(tuple(n.host for n in nodes))

    def one(node: Any) -> T:
        return fn(pool.get(node))

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(nodes)))) as ex:
            futures = [(node.host, ex.submit(one, node)) for node in nodes]
            for host, future in futures:
                exc = future.exception()
                if exc is None:
                    result.results[host] = future.result()
                else:
                    result.failures[host] = exc
    finally:
        if own:
            pool.close()
    return result
