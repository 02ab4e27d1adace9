"""The embedded local default inventory: this machine, no SSH, cpu profile, two rank slots.

Its YAML is package data (``local_default.yaml``, identical to ``inventories/local-cpu.yaml``): the
work folder is ``~/.orchestrate/local-node`` of the user running ``orchestrate`` and the node Python
is the controller's own interpreter (``{controller_python}``).
"""

from __future__ import annotations

from importlib import resources

from orchestrator.inventory.load import parse_inventory
from orchestrator.inventory.model import Inventory

DEFAULT_SOURCE = "<embedded local default>"


def default_inventory_text() -> str:
    """The YAML text of the embedded default."""
    return (
        resources.files("orchestrator.inventory").joinpath("local_default.yaml").read_text(encoding="utf-8")
    )


def default_inventory() -> Inventory:
    """The embedded local CPU default, validated like any inventory."""
    return parse_inventory(default_inventory_text(), DEFAULT_SOURCE)
