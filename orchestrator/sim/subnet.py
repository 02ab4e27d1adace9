"""Pick a private /24 for a cluster: derived from its name, skipping any network already in use."""

from __future__ import annotations

import ipaddress
import zlib

from orchestrator.errors import SimError

POOL = ipaddress.ip_network("10.213.0.0/16")  # 256 cluster subnets


def candidates(name: str) -> list[ipaddress.IPv4Network]:
    """Every /24 of the pool, starting at the one the name hashes to."""
    subnets = list(POOL.subnets(new_prefix=24))
    start = zlib.crc32(name.encode()) % len(subnets)
    return subnets[start:] + subnets[:start]


def choose(name: str, taken: list[str]) -> str:
    """The first candidate overlapping none of ``taken`` (host routes, other clusters' subnets)."""
    used = [ipaddress.ip_network(t, strict=False) for t in taken]
    for net in candidates(name):
        if not any(net.overlaps(u) for u in used):
            return str(net)
    raise SimError(
        f"no free /24 left in {POOL} for cluster {name!r}: remove a cluster with `orchestrate sim down`"
    )


def host_address(subnet: str, index: int) -> str:
    """Address ``index`` of the subnet: 1 is the bridge (the controller's side), nodes from 11."""
    return str(ipaddress.ip_network(subnet)[index])


def node_address(subnet: str, node_index: int) -> str:
    return host_address(subnet, 10 + node_index)
