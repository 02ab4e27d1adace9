"""What the hardware profile decides in a plan: flash attention, the profile's own warning, and the
rank table version with the SuperPoD ids of Atlas A3 (docs/ascend-cluster.md §1, §7-§9). Pure.

Flash attention is on exactly where FlashAttentionScore exists (``HardwareProfile.flash_attention``:
the Atlas A2/A3 training products); the rendered YAML always says which (``use_flash_attention``), so
the model never decides by itself. Asking for it elsewhere (``--set model.use_flash_attention=true``)
is refused. A 1.2 rank table (Atlas A3) needs every device's super device id, which only discovery
reads (``npu-smi info -t spod-info``): without ``--discover`` such a plan is refused with that fix.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping, Optional

from orchestrator.errors import InputError, PlanError, Problem
from orchestrator.inventory.profiles import HardwareProfile

FLASH_KEY = "use_flash_attention"


def flash_attention(profile: HardwareProfile, model_overrides: Mapping[str, Any]) -> bool:
    """Whether the job uses FlashAttentionScore: the profile's answer, or False when ``--set
    model.use_flash_attention=false`` turns it off; PlanError when asked for where it does not exist."""
    wanted = model_overrides.get(FLASH_KEY)
    if wanted is not None and not isinstance(wanted, bool):
        raise InputError(
            [Problem("--set", f"model.{FLASH_KEY}", f"{wanted!r} is not valid", "give true or false")]
        )
    if wanted and not profile.flash_attention:
        raise PlanError(
            f"model.{FLASH_KEY}=true on {profile.name} ({profile.description}): the FlashAttentionScore "
            "operator exists on Atlas A2/A3 training products only (CANN operator list); the model runs "
            f"its dense attention there. Remove the override."
        )
    return profile.flash_attention if wanted is None else bool(wanted)


def plan_warnings(profile: HardwareProfile) -> list[str]:
    """What every plan on ``profile`` must say (e.g. that the pinned stack does not support it)."""
    return [profile.stack_note] if profile.stack_note else []


def table_version(inventory: Any) -> str:
    """ "1.2" on profiles that need it (Atlas A3 SuperPoD), else the inventory's rank_table_version."""
    if inventory.profile.rank_table_version == "1.2":
        return "1.2"
    return inventory.cluster.rank_table_version


def _found(discovered: Optional[Any], host: str) -> Optional[Any]:
    return discovered.node(host) if discovered is not None else None


def super_pod_id(spec: Any, discovered: Optional[Any]) -> Optional[str]:
    """The inventory's super_pod_id (a logical SuperPoD), else the one the node's chips report."""
    found = _found(discovered, spec.host)
    return spec.super_pod_id or (found.super_pod_id if found is not None else None)


def super_device_ids(spec: Any, discovered: Optional[Any]) -> tuple[str, ...]:
    """The super device id of each of the node's devices (aligned with ``spec.devices``), or () when
    discovery did not read them all."""
    found = _found(discovered, spec.host)
    if found is None:
        return ()
    states = [found.device(d) for d in spec.devices]
    ids = tuple(s.super_device_id for s in states if s is not None and s.super_device_id is not None)
    return ids if len(ids) == len(spec.devices) else ()


def host_ip(spec: Any) -> Optional[str]:
    """A 1.2 server's ``host_ip``: the node's address when it is an IP."""
    try:
        return str(ipaddress.ip_address(spec.host))
    except ValueError:
        return None


def super_pod_problems(inventory: Any, discovered: Optional[Any]) -> list[Problem]:
    """A 1.2 table's nodes without super device ids for every device, each with the fix."""
    if table_version(inventory) != "1.2":
        return []
    return [
        Problem(
            inventory.source,
            f"nodes[{i}]",
            f"{n.host}: the super device id of each device is unknown (rank table 1.2 needs it)",
            "plan with --discover: discovery reads it with `npu-smi info -t spod-info -i <npu> -c <chip>`",
        )
        for i, n in enumerate(inventory.nodes)
        if not super_device_ids(n, discovered)
    ]
