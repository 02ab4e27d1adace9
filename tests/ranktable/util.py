"""Small builders of rank table inputs shared by the rank table tests."""

from __future__ import annotations

from orchestrator.inventory.profiles import get_profile
from orchestrator.ranktable import NodeDevices

A2 = get_profile("atlas-800t-a2-64g")
A800 = get_profile("atlas-800-32g")


def a2_node(server_id: str, subnet: int, devices=range(8)) -> NodeDevices:
    """An Atlas 800T A2 node: every NPU NIC in 192.168.<subnet>.0/24."""
    return NodeDevices(server_id, tuple((d, f"192.168.{subnet}.{10 + d}") for d in devices))


def a800_node(server_id: str, host: int, devices=range(8)) -> NodeDevices:
    """An Atlas 800 node: NPU d in 192.168.(100 + d % 4).0/24, as the Atlas 800 NIC plan wants."""
    return NodeDevices(server_id, tuple((d, f"192.168.{100 + d % 4}.{host * 2 + d // 4}") for d in devices))
