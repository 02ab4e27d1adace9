"""NPU discovery over SSH: what each node has, and how it differs from the inventory."""

from orchestrator.discover.apply import apply_discovery
from orchestrator.discover.discover import discover, discover_node
from orchestrator.discover.model import DeviceState, Difference, DiffKind, Discovery, NodeDiscovery

__all__ = [
    "DeviceState",
    "DiffKind",
    "Difference",
    "Discovery",
    "NodeDiscovery",
    "apply_discovery",
    "discover",
    "discover_node",
]
