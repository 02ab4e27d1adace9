"""Compare discovered nodes with the inventory: one typed Difference per thing that does not match.

Device checks concern the devices a node uses: the inventory's ``devices`` when listed, else every NPU
found. Nodes without npu-smi are checked for their hostname only, unless the hardware profile has
NPUs (then the missing tool itself is an error). On an Ascend profile the chips must be the profile's:
chip name and HBM per device as npu-smi reports them (an Atlas 800I A2 with 910B4 32 GB is not an
Atlas 800T A2); on Atlas A3 every chip needs its super device id (rank table 1.2).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterator, Optional, Sequence

from orchestrator.discover.model import DeviceState, Difference, DiffKind, NodeDiscovery
from orchestrator.inventory.profiles import HardwareProfile, profiles_matching

HEALTHY = "OK"
NET_OK = "Success"


def _short(name: str) -> str:
    return name.split(".", 1)[0]


def _hostname(spec: Any, found: NodeDiscovery) -> Iterator[Difference]:
    if (
        spec.name
        and found.hostname not in (spec.name, _short(spec.name))
        and _short(found.hostname) != spec.name
    ):
        yield Difference(
            found.host,
            DiffKind.HOSTNAME,
            f"hostname is {found.hostname!r}, the inventory expects {spec.name!r}",
            expected=spec.name,
            found=found.hostname,
        )


def used_devices(spec: Any, found: NodeDiscovery) -> tuple[int, ...]:
    """The devices a node uses: the inventory's list, else every NPU discovered."""
    return tuple(spec.devices) if spec.devices else found.device_ids


def _device(spec: Any, found: NodeDiscovery, dev: int, index: int) -> Iterator[Difference]:
    host, state = found.host, found.device(dev)
    if state is None:
        yield Difference(
            host,
            DiffKind.MISSING_DEVICE,
            f"NPU {dev} is in the inventory but npu-smi does not list it "
            f"(found: {', '.join(map(str, found.device_ids)) or 'none'})",
            dev,
            str(dev),
            "",
        )
        return
    yield from _device_ip(spec, host, state, index)
    if state.health != HEALTHY:
        severity = "warning" if state.health == "Warning" else "error"
        yield Difference(
            host, DiffKind.UNHEALTHY_NPU, f"health is {state.health}", dev, HEALTHY, state.health, severity
        )
    if state.link == "DOWN":
        yield Difference(host, DiffKind.LINK_DOWN, "device NIC link is DOWN", dev, "UP", "DOWN")
    if state.net_health is not None and state.net_health != NET_OK:
        yield Difference(
            host,
            DiffKind.NET_HEALTH,
            f"device NIC net health is {state.net_health}",
            dev,
            NET_OK,
            state.net_health,
        )
    if state.processes:
        procs = ", ".join(f"{p.pid} ({p.name or '?'})" for p in state.processes)
        yield Difference(host, DiffKind.BUSY_NPU, f"held by process(es) {procs}", dev, "", procs, "warning")


def _device_ip(spec: Any, host: str, state: DeviceState, index: int) -> Iterator[Difference]:
    dev = state.device_id
    expected = spec.device_ips[index] if index < len(spec.device_ips) else None
    if state.ip is None:
        yield Difference(
            host,
            DiffKind.NO_DEVICE_IP,
            "no device IP from hccn_tool or /etc/hccn.conf",
            dev,
            expected or "",
            "",
        )
    elif expected and expected != state.ip:
        yield Difference(
            host,
            DiffKind.DEVICE_IP,
            f"device IP is {state.ip}, the inventory says {expected}",
            dev,
            expected,
            state.ip,
        )


def _gb(mb: Optional[int]) -> str:
    return "HBM unknown" if mb is None else f"{mb / 1024:g} GB HBM"


def _ids(ids: Sequence[int]) -> str:
    """ "0-7" for a run, else "0, 2, 5"."""
    ids = sorted(ids)
    if len(ids) > 2 and ids == list(range(ids[0], ids[-1] + 1)):
        return f"{ids[0]}-{ids[-1]}"
    return ", ".join(map(str, ids))


def _hardware(spec: Any, found: NodeDiscovery, profile: HardwareProfile) -> Iterator[Difference]:
    """One difference per node whose used chips are not the profile's (name or HBM), naming the
    profile they fit instead."""
    if not profile.chip_names:
        return
    groups: dict[tuple[str, Optional[int]], list[int]] = {}
    for dev in used_devices(spec, found):
        s = found.device(dev)
        mb = s.hbm_total_mb if s is not None else None
        if s is not None and not (
            profile.chip_matches(s.name) and (mb is None or profile.memory_matches(mb))
        ):
            groups.setdefault((s.name, mb), []).append(dev)
    if not groups:
        return
    seen = "; ".join(f"NPU {_ids(devs)}: {name} with {_gb(mb)}" for (name, mb), devs in groups.items())
    expected = f"{' or '.join(profile.chip_names)} with {profile.device_memory_gb:g} GB HBM"
    likely = profiles_matching(*next(iter(groups)))
    hint = (
        f"; this node fits {' or '.join(f'{p.name} ({p.description})' for p in likely)}: use nodes of "
        f"{profile.name} or set cluster.profile to the node's"
        if likely
        else "; no known profile has these chips"
    )
    yield Difference(
        found.host,
        DiffKind.HARDWARE,
        f"{seen}, but profile {profile.name} ({profile.description}) expects {expected}{hint}",
        expected=expected,
        found=", ".join(f"{name} with {_gb(mb)}" for name, mb in groups),
    )


def _super_device_ids(spec: Any, found: NodeDiscovery, profile: HardwareProfile) -> Iterator[Difference]:
    if profile.rank_table_version != "1.2":
        return
    for dev in used_devices(spec, found):
        state = found.device(dev)
        if state is not None and state.super_device_id is None:
            yield Difference(
                found.host,
                DiffKind.SUPER_POD,
                "no super device id (npu-smi info -t spod-info did not answer): rank table 1.2 needs it",
                dev,
                "SDID",
                "",
            )


def _node(spec: Any, found: NodeDiscovery, profile: HardwareProfile) -> Iterator[Difference]:
    accelerator = profile.accelerator
    yield from _hostname(spec, found)
    if not found.has_npu_tools:
        if accelerator:
            yield Difference(
                found.host,
                DiffKind.NO_NPU_TOOLS,
                "npu-smi not found (PATH, /usr/local/sbin): is the Ascend driver installed?",
            )
        return
    if found.npu_smi_error:
        yield Difference(found.host, DiffKind.NPU_SMI_FAILED, found.npu_smi_error)
        return
    if accelerator:
        yield from _hardware(spec, found, profile)
        yield from _super_device_ids(spec, found, profile)
    for index, dev in enumerate(used_devices(spec, found)):
        yield from _device(spec, found, dev, index)


def _duplicates(specs: dict[str, Any], nodes: Sequence[NodeDiscovery]) -> Iterator[Difference]:
    names: dict[str, list[str]] = defaultdict(list)
    ips: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for found in nodes:
        if found.hostname:
            names[found.hostname].append(found.host)
        for dev in used_devices(specs[found.host], found):
            state = found.device(dev)
            if state is not None and state.ip:
                ips[state.ip].append((found.host, dev))
    for name, hosts in names.items():
        for host in hosts if len(hosts) > 1 else ():
            others = ", ".join(h for h in hosts if h != host)
            yield Difference(
                host, DiffKind.DUPLICATE_HOSTNAME, f"hostname {name!r} is also used by {others}", found=name
            )
    for ip, holders in ips.items():
        for host, dev in holders if len(holders) > 1 else ():
            others = ", ".join(f"{h} NPU {d}" for h, d in holders if (h, d) != (host, dev))
            yield Difference(
                host, DiffKind.DUPLICATE_DEVICE_IP, f"device IP {ip} is also used by {others}", dev, found=ip
            )
    sdids: dict[tuple[Optional[str], str], list[tuple[str, int]]] = defaultdict(list)
    for found in nodes:
        for dev in used_devices(specs[found.host], found):
            state = found.device(dev)
            if state is not None and state.super_device_id is not None:
                sdids[(state.super_pod_id, state.super_device_id)].append((found.host, dev))
    for (pod, sdid), holders in sdids.items():
        for host, dev in holders if len(holders) > 1 else ():
            others = ", ".join(f"{h} NPU {d}" for h, d in holders if (h, d) != (host, dev))
            yield Difference(
                host,
                DiffKind.SUPER_POD,
                f"super device id {sdid} in SuperPoD {pod} is also {others}'s (HCCL refuses duplicates)",
                dev,
                found=sdid,
            )


def compare(
    inventory: Any, nodes: Sequence[NodeDiscovery], failures: Sequence[tuple[str, str]]
) -> tuple[Difference, ...]:
    """Every difference between ``inventory`` and the discovered ``nodes``, in inventory order."""
    specs = {n.host: n for n in inventory.nodes}
    profile = inventory.cluster.hardware
    diffs = [Difference(host, DiffKind.UNREACHABLE, message) for host, message in failures]
    for found in nodes:
        diffs.extend(_node(specs[found.host], found, profile))
    diffs.extend(_duplicates(specs, nodes))
    order = {n.host: i for i, n in enumerate(inventory.nodes)}
    return tuple(
        sorted(diffs, key=lambda d: (order.get(d.host, len(order)), d.device if d.device is not None else -1))
    )
