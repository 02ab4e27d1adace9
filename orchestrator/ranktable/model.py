"""Typed HCCL rank tables (version "1.0" for Atlas 800 / 800T A2, "1.2" for Atlas A3 SuperPoD).

Input is :class:`NodeDevices` per node; output is :class:`RankTable`. Ids are kept as the strings the
JSON carries (every value of a rank table is a string), so a table read from disk round-trips exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

VERSIONS = ("1.0", "1.2")
STATUS_COMPLETED = "completed"
HOST_NIC_RESERVED = "reserve"


@dataclass(frozen=True)
class NodeDevices:
    """One node's devices, the input of :func:`build_rank_table`.

    ``devices`` holds (physical device id, device NIC IP) pairs, in any order. ``super_device_ids``
    (version 1.2) is empty or as long as ``devices``, matching it position by position.
    """

    server_id: str
    devices: tuple[tuple[int, str], ...]
    super_pod_id: Optional[str] = None
    host_ip: Optional[str] = None
    super_device_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class RankDevice:
    device_id: str  # physical NPU id, the N of /dev/davinciN
    device_ip: str  # the NPU's own NIC address
    rank_id: str  # global rank, "0".."world-1"
    super_device_id: Optional[str] = None  # version 1.2 only


@dataclass(frozen=True)
class RankServer:
    server_id: str
    devices: tuple[RankDevice, ...]
    host_nic_ip: str = HOST_NIC_RESERVED
    host_ip: Optional[str] = None  # version 1.2 only


@dataclass(frozen=True)
class SuperPod:
    """Version 1.2: which servers form one SuperPoD."""

    super_pod_id: str
    server_ids: tuple[str, ...]


@dataclass(frozen=True)
class RankTable:
    version: str
    servers: tuple[RankServer, ...]
    status: str = STATUS_COMPLETED
    super_pods: tuple[SuperPod, ...] = ()  # version 1.2 only

    @property
    def server_count(self) -> int:
        return len(self.servers)

    @property
    def world_size(self) -> int:
        return sum(len(s.devices) for s in self.servers)

    def server(self, server_id: str) -> RankServer:
        for s in self.servers:
            if s.server_id == server_id:
                return s
        known = ", ".join(s.server_id for s in self.servers)
        raise KeyError(f"server {server_id!r} is not in the rank table (servers: {known})")

    def ranks_of(self, server_id: str) -> tuple[int, ...]:
        """Global ranks of ``server_id``'s devices, in table order."""
        return tuple(int(d.rank_id) for d in self.server(server_id).devices)

    def first_rank(self, server_id: str) -> int:
        """The lowest global rank on ``server_id`` (what a node's first process gets)."""
        return min(self.ranks_of(server_id))

    def devices(self) -> tuple[tuple[RankServer, RankDevice], ...]:
        """Every (server, device) pair in table order."""
        return tuple((s, d) for s in self.servers for d in s.devices)

    def super_pod_of(self, server_id: str) -> Optional[str]:
        return next((p.super_pod_id for p in self.super_pods if server_id in p.server_ids), None)
