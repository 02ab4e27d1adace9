"""The simulated Ascend hardware of one cluster: typed, loaded from and saved to one YAML data file.

The file lists nodes in order (node1 first); each node lists its NPUs. The fake tools on a node read
the JSON twin of this file (``hardware.json``, written next to it by :func:`save`) because they run
with the stdlib only. Example::

    npu_smi_version: 25.2.0
    nodes:
      - name: sim-node1
        npus:
          - {id: 0, ip: 192.168.101.10, link: UP, net_health: Success, health: OK}
          - {id: 1, ip: 192.168.101.11, processes: [{pid: 4242, name: python, memory_mb: 31913}]}

Every NPU field but ``id`` and ``ip`` has a default (see :class:`Npu`); ``name`` of a node is
optional (the cluster fills in its hostnames).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from orchestrator.errors import InputError, Problem

# The order the real 910B boards enumerate their PCIe bus ids in.
BUS_IDS = ("0000:C1:00.0", "0000:C2:00.0", "0000:81:00.0", "0000:82:00.0") + (
    "0000:01:00.0",
    "0000:02:00.0",
    "0000:41:00.0",
    "0000:42:00.0",
)
LINK_STATES = ("UP", "DOWN")


@dataclass(frozen=True)
class NpuProcess:
    """A process the hardware file says holds an NPU (pid as seen on the node)."""

    pid: int
    name: str = "python"
    memory_mb: int = 0


@dataclass(frozen=True)
class Npu:
    """One NPU card with its NIC (``ip`` is its device IP: printed by the fake tools, never routed)."""

    id: int
    ip: str
    netmask: str = "255.255.255.0"
    gateway: str = ""  # default: the .1 of the device subnet
    netdetect: str = ""  # default: the gateway
    link: str = "UP"  # UP or DOWN (hccn_tool -link -g)
    net_health: str = "Success"  # Success, Init, Fault, Socket fail, ...
    chip_name: str = "910B3"
    health: str = "OK"  # OK, Warning, Alarm, Critical
    power_w: float = 92.0
    temp_c: int = 35
    bus_id: str = ""  # default: from BUS_IDS by id
    aicore_pct: int = 0
    hugepages_used: int = 0
    hugepages_total: int = 0
    memory_used_mb: int = 0
    memory_total_mb: int = 0
    hbm_used_mb: int = 3400
    hbm_total_mb: int = 65536
    processes: tuple[NpuProcess, ...] = ()


@dataclass(frozen=True)
class NodeHardware:
    """The NPUs of one node, in physical-id order."""

    name: str
    npus: tuple[Npu, ...]

    @property
    def device_ids(self) -> list[int]:
        return [n.id for n in self.npus]

    @property
    def device_ips(self) -> list[str]:
        return [n.ip for n in self.npus]


@dataclass(frozen=True)
class Hardware:
    """All nodes of one simulated cluster, node1 first."""

    nodes: tuple[NodeHardware, ...]
    npu_smi_version: str = "25.2.0"
    driver_version: str = "25.2.0"

    def node(self, name: str) -> NodeHardware:
        return next(n for n in self.nodes if n.name == name)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (lists, not tuples): the form the fake tools read."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def default_npu(node_index: int, dev: int, chip_name: str = "910B3") -> Npu:
    """NPU ``dev`` of node ``node_index`` (1-based): device IP 192.168.<100+node>.<10+dev>/24."""
    base = f"192.168.{100 + node_index}"
    return Npu(
        id=dev,
        ip=f"{base}.{10 + dev}",
        gateway=f"{base}.1",
        netdetect=f"{base}.1",
        chip_name=chip_name,
        power_w=round(90.0 + 1.3 * dev, 1),
        temp_c=34 + dev % 4,
        bus_id=BUS_IDS[dev % len(BUS_IDS)],
    )


def default_hardware(node_names: list[str], devices: int = 8) -> Hardware:
    """``devices`` healthy, idle 910B3 NPUs on each node."""
    if not 1 <= devices <= 16 or len(node_names) > 150:
        raise InputError("a simulated cluster has 1..150 nodes of 1..16 NPUs")
    nodes = tuple(
        NodeHardware(name, tuple(default_npu(i, d) for d in range(devices)))
        for i, name in enumerate(node_names, 1)
    )
    return Hardware(nodes=nodes)


def _complete(npu: Npu) -> Npu:
    """Fill the defaults that depend on other fields (gateway from the IP, bus id from the id)."""
    gateway = npu.gateway or str(next(ipaddress.ip_network(f"{npu.ip}/{npu.netmask}", strict=False).hosts()))
    return dataclasses.replace(
        npu,
        gateway=gateway,
        netdetect=npu.netdetect or gateway,
        bus_id=npu.bus_id or BUS_IDS[npu.id % len(BUS_IDS)],
    )


def _build(cls: type, raw: Any, where: str, file: str, problems: list[Problem]) -> Optional[Any]:
    """Make dataclass ``cls`` from a mapping, recording unknown/missing/mistyped keys as problems."""
    if not isinstance(raw, dict):
        problems.append(Problem(file, where, f"expected a mapping, got {type(raw).__name__}"))
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in sorted(set(raw) - set(fields)):
        problems.append(Problem(file, f"{where}.{key}", "unknown key", f"use one of {', '.join(fields)}"))
    kwargs: dict[str, Any] = {}
    before = len(problems)
    for name, f in fields.items():
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(Problem(file, f"{where}.{name}", "missing"))
            continue
        value, want = raw[name], f.type.split("[")[0]
        if want in ("int", "float") and (isinstance(value, bool) or not isinstance(value, (int, float))):
            problems.append(Problem(file, f"{where}.{name}", f"expected a number, got {value!r}"))
        elif want == "str" and not isinstance(value, (str, int, float)):
            problems.append(Problem(file, f"{where}.{name}", f"expected a string, got {value!r}"))
        else:
            kwargs[name] = str(value) if want == "str" else value
    return cls(**kwargs) if len(problems) == before else None  # unknown keys alone still build


def _check_npu(npu: Npu, where: str, file: str) -> list[Problem]:
    problems = []
    try:
        ipaddress.ip_network(f"{npu.ip}/{npu.netmask}", strict=False)
    except ValueError as exc:
        problems.append(Problem(file, f"{where}.ip", str(exc), "give an IPv4 address and netmask"))
    if npu.link not in LINK_STATES:
        problems.append(Problem(file, f"{where}.link", f"{npu.link!r} is not UP or DOWN"))
    return problems


def parse(raw: Any, file: str = "<hardware>") -> Hardware:
    """Validate a loaded YAML document; every problem is reported at once."""
    problems: list[Problem] = []
    if not isinstance(raw, dict) or not isinstance(raw.get("nodes"), list) or not raw["nodes"]:
        raise InputError([Problem(file, "nodes", "expected a non-empty list of nodes")])
    nodes = []
    for i, rnode in enumerate(raw["nodes"]):
        where = f"nodes[{i}]"
        rnpus = rnode.get("npus") if isinstance(rnode, dict) else None
        if not isinstance(rnpus, list) or not rnpus:
            problems.append(Problem(file, f"{where}.npus", "expected a non-empty list of NPUs"))
            continue
        npus = []
        for j, rnpu in enumerate(rnpus):
            mine: list[Problem] = []
            procs = [
                _build(NpuProcess, p, f"{where}.npus[{j}].processes", file, mine)
                for p in rnpu.get("processes", [])
            ]
            npu = _build(Npu, {**rnpu, "processes": ()}, f"{where}.npus[{j}]", file, mine)
            mine += _check_npu(npu, f"{where}.npus[{j}]", file) if npu else []
            problems += mine
            if not mine:
                npus.append(_complete(dataclasses.replace(npu, processes=tuple(procs))))
        ids = [n.id for n in npus]
        if len(set(ids)) != len(ids):
            problems.append(Problem(file, f"{where}.npus", f"duplicate NPU ids {ids}"))
        nodes.append(NodeHardware(str(rnode.get("name", f"node{i + 1}")), tuple(npus)))
    if problems:
        raise InputError(problems)
    versions = {k: str(raw[k]) for k in ("npu_smi_version", "driver_version") if k in raw}
    return Hardware(nodes=tuple(nodes), **versions)


def load(path: Path) -> Hardware:
    """Read and validate a hardware YAML file."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError([Problem(str(path), "(file)", str(exc))]) from exc
    return parse(raw, str(path))


def with_names(hw: Hardware, names: list[str]) -> Hardware:
    """The first ``len(names)`` nodes of ``hw``, renamed to the cluster's hostnames."""
    if len(hw.nodes) < len(names):
        raise InputError(
            f"the hardware file describes {len(hw.nodes)} node(s), the cluster needs {len(names)}"
        )
    nodes = tuple(dataclasses.replace(n, name=name) for n, name in zip(hw.nodes, names))
    return dataclasses.replace(hw, nodes=nodes)


def save(hw: Hardware, path: Path) -> None:
    """Write the YAML file and its JSON twin (``.json`` next to it) for the fake tools."""
    data = hw.to_dict()
    header = "# simulated Ascend hardware (orchestrate sim); the fake tools read the .json twin\n"
    Path(path).write_text(header + yaml.safe_dump(data, sort_keys=False, width=110))
    Path(path).with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
