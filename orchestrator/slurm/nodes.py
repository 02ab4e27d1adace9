"""The nodes of an allocation as inventory nodes: names from Slurm, addresses and NPUs read on them.

One job step on every allocated node prints its hostname and addresses (the address its own hostname
resolves to, else its first configured one): that is the node's ``host`` (the rank table's
server_id). On Ascend profiles each node's NPUs and device IPs are then discovered as for
`orchestrate discover`, through job steps; on ``cpu`` a node has ``devices`` rank slots.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from orchestrator.inventory.model import DEFAULT_ASCEND_ROOT, Inventory, NodeSpec
from orchestrator.slurm import commands
from orchestrator.slurm.allocation import Allocation, SlurmError
from orchestrator.slurm.settings import SlurmRoute
from orchestrator.transport.base import Transport

_ADDRESSES = 'echo "$(hostname)|$(getent ahostsv4 "$(hostname)" | cut -d" " -f1 | sort -u | tr "\\n" " ")|$(hostname -I)"'


def _usable(a: str) -> bool:
    try:
        ip = ipaddress.ip_address(a)
    except ValueError:
        return False
    return ip.version == 4 and not ip.is_loopback and not ip.is_link_local


def parse_addresses(text: str) -> dict[str, str]:
    """Lines ``hostname|resolved ...|configured ...`` -> {hostname: address}: a resolved address the
    node also has configured, else its first configured one (loopback never)."""
    found = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3 or not parts[0]:
            continue
        resolved = [a for a in parts[1].split() if _usable(a)]
        configured = [a for a in parts[2].split() if _usable(a)]
        pick = next((a for a in resolved if a in configured), None) or (configured or resolved or [None])[0]
        if pick:
            found[parts[0]] = pick
    return found


def addresses(login: Transport, alloc: Allocation) -> dict[str, str]:
    """{Slurm node name: address} from one step on every node of the allocation."""
    argv = commands.step_per_node(alloc.slurm_job, alloc.nodes, _ADDRESSES)
    r = login.run(argv, timeout=120, check=False)
    found = parse_addresses(r.stdout)
    missing = [n for n in alloc.nodes if n not in found]
    if r.exit_code != 0 or missing:
        raise SlurmError(f"could not read the address of {', '.join(missing) or 'every node'} in Slurm job "
                         f"{alloc.slurm_job}: {r.stderr.strip() or r.stdout.strip()}")  # fmt: skip
    return found


def devices_per_node(inv: Inventory) -> int:
    """The devices a node gives the job: ``slurm.devices``, else the profile's count."""
    asked = inv.cluster.slurm.devices if inv.cluster.slurm else 0
    return asked or inv.cluster.hardware.devices_per_node


def node_specs(inv: Inventory, alloc: Allocation, found: dict[str, str]) -> list[NodeSpec]:
    """One NodeSpec per allocated node: the cluster's settings, the Slurm route to it, and (until
    discovery says otherwise) the first ``devices_per_node`` device ids."""
    c = inv.cluster
    login = c.slurm.login if c.slurm else "local"
    ascend_root = c.ascend_root or (DEFAULT_ASCEND_ROOT if c.hardware.accelerator else None)
    devices = tuple(range(devices_per_node(inv)))
    return [
        NodeSpec(
            host=found[name],
            name=name,
            devices=devices,
            device_ips=(),
            ssh=c.ssh,
            workdir=c.workdir,
            python=c.python,
            env=c.env,
            ascend_root=ascend_root,
            slurm=SlurmRoute(login, alloc.slurm_job, name, alloc.owned),
        )  # fmt: skip
        for name in alloc.nodes
    ]


def with_discovery(nodes: list[NodeSpec], pool: Any, wanted: int) -> list[NodeSpec]:
    """Ascend nodes with the NPUs and device IPs discovery finds there (the first ``wanted``)."""
    from orchestrator.discover.discover import discover_node
    from orchestrator.transport import fan_out

    res = fan_out(nodes, discover_node, pool=pool)
    res.raise_on_failure()
    out = []
    for n in nodes:
        found = res.results[n.host]
        states = list(found.devices)[:wanted]
        if len(states) < wanted:
            raise SlurmError(
                f"{n.name} ({n.host}) shows {len(found.devices)} NPU(s); the job needs {wanted} a node"
            )
        ips = tuple(s.ip or "" for s in states)
        out.append(dataclasses.replace(n, devices=tuple(s.device_id for s in states),
                                       device_ips=ips if all(ips) else ()))  # fmt: skip
    return out
