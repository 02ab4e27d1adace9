"""The host inventory: typed model, YAML loading with validation, hardware profiles.

``load_inventory(path)`` and ``parse_inventory(text, source)`` return an :class:`Inventory` or raise
``InputError`` listing every problem; ``default_inventory()`` is the embedded local CPU default.
"""

from orchestrator.inventory.defaults import default_inventory
from orchestrator.inventory.load import load_inventory, parse_inventory
from orchestrator.inventory.model import ClusterSettings, Inventory, JobDefaults, NodeSpec, SshSettings

__all__ = [
    "ClusterSettings",
    "Inventory",
    "JobDefaults",
    "NodeSpec",
    "SshSettings",
    "default_inventory",
    "load_inventory",
    "parse_inventory",
]
