"""Fill an inventory's devices and device IPs from a discovery (pure: a new Inventory, nothing touched)."""

from __future__ import annotations

import dataclasses
from typing import Any

from orchestrator.discover.diff import used_devices
from orchestrator.discover.model import Discovery, NodeDiscovery


def _filled(spec: Any, found: NodeDiscovery) -> Any:
    devices = used_devices(spec, found)
    states = [found.device(d) for d in devices]
    if any(s is None for s in states):
        return spec  # a listed device is missing: keep the inventory as written (a Difference says why)
    ips = tuple(s.ip for s in states)
    device_ips = ips if all(ips) else spec.device_ips
    return dataclasses.replace(spec, devices=tuple(devices), device_ips=device_ips)


def apply_discovery(inventory: Any, discovery: Discovery) -> Any:
    """``inventory`` with each node's devices (when not listed) and device IPs taken from ``discovery``.

    Nodes without NPU tools (the cpu profile), unreachable nodes and nodes whose listed devices were not
    all found stay as they are. Discovered IPs replace written ones: compare first to see differences.
    """
    nodes = []
    for spec in inventory.nodes:
        found = discovery.node(spec.host)
        usable = found is not None and found.has_npu_tools and found.npu_smi_error is None
        nodes.append(_filled(spec, found) if usable else spec)
    return dataclasses.replace(inventory, nodes=tuple(nodes))
