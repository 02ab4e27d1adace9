"""The simulated Ascend hardware of one cluster: typed, loaded from and saved to one YAML data file.

The file lists nodes in order (node1 first); each node lists its NPUs. The fake tools on a node read
the JSON twin of this file (``hardware.json``, written next to it by :func:`save`) because they run
with the stdlib only. Example::

    kind: atlas-800t-a2          # cpu (default) | atlas-800t-a2 | atlas-800i-a2-32g | atlas-800i-a2-64g
                                 # | atlas-900-a3: chips, HBM and the inventory profile (see KINDS)
    npu_smi_version: 25.3.rc1
    cann_version: 8.3.RC1        # the fake CANN toolkit of every node
    ascend_root: /usr/local/Ascend   # where the fake CANN and driver lie on the nodes; "" = not installed
    nodes:
      - name: sim-node1
        npus:
          - {id: 0, ip: 192.168.101.10, link: UP, net_health: Success, health: OK}
          - {id: 1, ip: 192.168.101.11, processes: [{pid: 4242, name: python, memory_mb: 31913}]}

Every NPU field but ``id`` and ``ip`` has a default (see :class:`Npu`, whose chip name and HBM come
from the node's ``kind``); ``name`` of a node is optional (the cluster fills in its hostnames), and a
node may set its own ``kind`` (an 800I A2 node among 800T A2 ones). ``npu_release_s`` is how long an
NPU stays held after its process exits, ``step_s`` the stand-in rank's seconds per training step.
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
class Kind:
    """A kind of simulated node: what its NPUs report, and the inventory profile it is planned with
    (``cpu``: 910B3 NPUs are printed, but jobs run on the CPU backend as the ``cpu`` profile)."""

    chip_name: str
    hbm_total_mb: int
    profile: str
    chips_per_npu: int = 1
    devices: int = 8


KINDS = {
    "cpu": Kind("910B3", 65536, "cpu"),
    "atlas-800t-a2": Kind("910B3", 65536, "atlas-800t-a2-64g"),
    "atlas-800i-a2-32g": Kind("910B4", 32768, "atlas-800i-a2-32g"),
    "atlas-800i-a2-64g": Kind("910B4-1", 65536, "atlas-800i-a2-64g"),
    "atlas-900-a3": Kind("Ascend910", 65536, "atlas-900-a3-64g", chips_per_npu=2, devices=16),
}
DEFAULT_ASCEND_ROOT = "/usr/local/Ascend"
NODE_OWN_PREFIXES = ("/usr/local/", "/opt/", "/home/")  # where a node's private files can lie


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
    kind: str = ""  # default: the cluster's

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
    npu_smi_version: str = "25.3.rc1"
    driver_version: str = "25.3.rc1"
    kind: str = "cpu"
    profile: str = ""  # the inventory profile; default: the kind's
    cann_version: str = "8.3.RC1"
    ascend_root: str = DEFAULT_ASCEND_ROOT  # "" = no CANN and no driver files on the nodes
    npu_release_s: float = 3.0
    step_s: float = 0.3
    super_pod_id: int = 0  # Atlas A3: the SuperPoD every node is in

    @property
    def inventory_profile(self) -> str:
        return self.profile or KINDS[self.kind].profile

    def node_kind(self, node: NodeHardware) -> Kind:
        return KINDS[node.kind or self.kind]

    def node(self, name: str) -> NodeHardware:
        return next(n for n in self.nodes if n.name == name)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (lists, not tuples): the form the fake tools read."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def default_npu(node_index: int, dev: int, chip_name: str = "910B3", hbm_total_mb: int = 65536) -> Npu:
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
        hbm_total_mb=hbm_total_mb,
    )


def default_hardware(node_names: list[str], devices: int = 0, kind: str = "cpu") -> Hardware:
    """Healthy, idle NPUs of ``kind`` on each node (``devices``: default the kind's, 8 or 16)."""
    if kind not in KINDS:
        raise InputError(f"unknown node kind {kind!r}: use one of {', '.join(KINDS)}")
    k = KINDS[kind]
    devices = devices or k.devices
    if not 1 <= devices <= 16 or len(node_names) > 150:
        raise InputError("a simulated cluster has 1..150 nodes of 1..16 NPUs")
    nodes = tuple(
        NodeHardware(name, tuple(default_npu(i, d, k.chip_name, k.hbm_total_mb) for d in range(devices)))
        for i, name in enumerate(node_names, 1)
    )
    return Hardware(nodes=nodes, kind=kind)


def _complete(npu: Npu, raw: dict, kind: Kind) -> Npu:
    """Fill the defaults that depend on other fields (gateway from the IP, bus id from the id, chip name
    and HBM from the node's kind unless the file gives them)."""
    gateway = npu.gateway or str(next(ipaddress.ip_network(f"{npu.ip}/{npu.netmask}", strict=False).hosts()))
    return dataclasses.replace(
        npu,
        gateway=gateway,
        netdetect=npu.netdetect or gateway,
        bus_id=npu.bus_id or BUS_IDS[npu.id % len(BUS_IDS)],
        chip_name=str(raw.get("chip_name", kind.chip_name)),
        hbm_total_mb=int(raw.get("hbm_total_mb", kind.hbm_total_mb)),
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
    settings = _settings(raw, file, problems)
    nodes = []
    for i, rnode in enumerate(raw["nodes"]):
        where = f"nodes[{i}]"
        kind = _kind(
            rnode.get("kind", "") if isinstance(rnode, dict) else "", f"{where}.kind", file, problems
        )
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
                node_kind = KINDS[kind or settings.get("kind", "cpu")]
                npus.append(_complete(dataclasses.replace(npu, processes=tuple(procs)), rnpu, node_kind))
        ids = [n.id for n in npus]
        if len(set(ids)) != len(ids):
            problems.append(Problem(file, f"{where}.npus", f"duplicate NPU ids {ids}"))
        nodes.append(NodeHardware(str(rnode.get("name", f"node{i + 1}")), tuple(npus), kind))
    if problems:
        raise InputError(problems)
    return Hardware(nodes=tuple(nodes), **settings)


_SETTINGS = {
    "npu_smi_version": str,
    "driver_version": str,
    "kind": str,
    "profile": str,
    "cann_version": str,
    "ascend_root": str,
    "npu_release_s": float,
    "step_s": float,
    "super_pod_id": int,
}


def _kind(value: Any, where: str, file: str, problems: list[Problem]) -> str:
    if value and value not in KINDS:
        problems.append(
            Problem(file, where, f"unknown node kind {value!r}", f"use one of {', '.join(KINDS)}")
        )
        return ""
    return str(value or "")


def _settings(raw: dict, file: str, problems: list[Problem]) -> dict[str, Any]:
    """The cluster-wide keys of the file (versions, kind, CANN location, timings), checked."""
    for key in sorted(set(raw) - set(_SETTINGS) - {"nodes"}):
        problems.append(Problem(file, key, "unknown key", f"use one of nodes, {', '.join(_SETTINGS)}"))
    out: dict[str, Any] = {}
    for key, kind in _SETTINGS.items():
        if key not in raw:
            continue
        value = raw[key]
        if kind in (int, float) and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
        ):
            problems.append(Problem(file, key, f"expected a number >= 0, got {value!r}"))
            continue
        out[key] = kind(value) if kind in (int, float) else ("" if value is None else str(value))
    out["kind"] = _kind(out.get("kind", "cpu"), "kind", file, problems) or "cpu"
    root = out.get("ascend_root", DEFAULT_ASCEND_ROOT)
    if root and not root.startswith(NODE_OWN_PREFIXES):
        problems.append(Problem(file, "ascend_root", f"{root!r} is not under a node's own folders",
                                f"use a path under {', '.join(NODE_OWN_PREFIXES)} (or \"\" for no install)"))  # fmt: skip
    return out


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


def node_dict(hw: Hardware, index: int) -> dict[str, Any]:
    """Node ``index`` (0-based) in the JSON form of the fake tools, with its kind resolved (and what
    follows from it: chips per NPU card; its position, the A3 server index)."""
    node = hw.to_dict()["nodes"][index]
    node["kind"] = node["kind"] or hw.kind
    node["chips_per_npu"] = KINDS[node["kind"]].chips_per_npu
    node["server_index"] = index
    return node


def save(hw: Hardware, path: Path) -> None:
    """Write the YAML file and its JSON twin (``.json`` next to it) for the fake tools."""
    data = hw.to_dict()
    header = "# simulated Ascend hardware (orchestrate sim); the fake tools read the .json twin\n"
    Path(path).write_text(header + yaml.safe_dump(data, sort_keys=False, width=110))
    twin = dict(data, nodes=[node_dict(hw, i) for i in range(len(hw.nodes))])
    Path(path).with_suffix(".json").write_text(json.dumps(twin, indent=1) + "\n")
