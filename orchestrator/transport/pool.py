"""Connecting to nodes and keeping one connection per host for reuse across many commands."""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping, Optional

from orchestrator.transport.base import Transport
from orchestrator.transport.local import LocalTransport
from orchestrator.transport.settings import SshOptions
from orchestrator.transport.ssh import SshTransport


def connect(node: Any, *, lazy: bool = False) -> Transport:
    """An open transport to ``node`` (a NodeSpec): LocalTransport for ``local`` nodes, else SSH.

    ``lazy``: the SSH connection opens at its first use instead (its errors surface there); bulk
    streams, which go through the OpenSSH client, never open it.
    """
    if getattr(node, "local", False):
        return LocalTransport(node.host)
    route = getattr(node, "slurm", None)
    if route is not None:  # a node of a Slurm allocation: job steps, run from the login host
        from orchestrator.slurm.steps import StepTransport

        login = route.login
        via = LocalTransport(login) if login == "local" else SshTransport(login, SshOptions.of(node.ssh))
        return StepTransport(via if lazy or login == "local" else via.connect(), route.slurm_job, route.node,
                             host=node.host)  # fmt: skip
    ssh = SshTransport(node.host, SshOptions.of(node.ssh))
    return ssh if lazy else ssh.connect()


class TransportPool:
    """Open transports by host, created on first use (thread-safe) and closed together.

    ``transports`` pre-seeds the pool (tests pass fakes); ``factory`` opens the others.
    """

    def __init__(
        self,
        transports: Optional[Mapping[str, Transport]] = None,
        factory: Callable[[Any], Transport] = connect,
    ):
        self._open: dict[str, Transport] = dict(transports or {})
        self._factory = factory
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, node: Any) -> Transport:
        host = node.host
        with self._lock:
            if host in self._open:
                return self._open[host]
            host_lock = self._locks.setdefault(host, threading.Lock())
        with host_lock:  # one connection attempt per host, others wait for it
            with self._lock:
                if host in self._open:
                    return self._open[host]
            transport = self._factory(node)
            with self._lock:
                self._open[host] = transport
            return transport

    def close(self) -> None:
        with self._lock:
            transports, self._open = list(self._open.values()), {}
        for transport in transports:
            transport.close()

    def __enter__(self) -> TransportPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
