"""Read every node in parallel: hostname, NPUs (npu-smi), device IPs (hccn_tool, else /etc/hccn.conf),
NIC link state and health, and on Atlas A3 each chip's SuperPoD ids; then list the differences from
the inventory.

Two round trips per node: the first finds the tools and reads hostname, ``npu-smi info`` and
/etc/hccn.conf; the second asks hccn_tool about each device found and, when npu-smi shows two chips per
NPU (A3), ``npu-smi info -t spod-info -i <npu> -c <chip>`` about each chip. Steps run one after another
on a node (never two npu-smi at once), nodes run in parallel. A node without npu-smi (the cpu profile)
yields its hostname only. Devices are physical ids: npu-smi's Chip Phy-ID when it prints one (one
device per chip), else the NPU id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from orchestrator.ascend import (
    AscendParseError,
    DeviceNic,
    NpuChip,
    NpuSmiInfo,
    parse_hccn_conf,
    parse_hccn_ip,
    parse_hccn_link,
    parse_hccn_net_health,
    parse_npu_smi_info,
    parse_npu_smi_spod_info,
)
from orchestrator.discover.diff import compare
from orchestrator.discover.model import DeviceState, Discovery, NodeDiscovery
from orchestrator.discover.probe import (
    HCCN_TOOL_PATHS,
    NPU_SMI_PATHS,
    StepOutput,
    find_tool_script,
    run_steps,
    tool_command,
)
from orchestrator.errors import OrchestrateError
from orchestrator.transport import Transport, TransportPool, fan_out

_HCCN_QUERIES = {"ip": "-ip", "link": "-link", "health": "-net_health"}
_BUSY_RETRY_S = 0.5


def _first_steps() -> dict[str, str]:
    find_npu_smi = find_tool_script("npu-smi", NPU_SMI_PATHS)
    return {
        "hostname": "hostname 2>/dev/null || uname -n",
        "npu_smi_path": find_npu_smi,
        "hccn_tool_path": find_tool_script("hccn_tool", HCCN_TOOL_PATHS),
        "npu_smi": f'p=$({find_npu_smi}) || exit 127; "$p" info',
        "hccn_conf": "cat /etc/hccn.conf",
    }


def _path(step: Optional[StepOutput]) -> Optional[str]:
    if step is None or not step.ok or not step.output.strip():
        return None
    return step.output.strip().splitlines()[0]


def _hccn_steps(hccn_tool: str, devices: tuple[int, ...]) -> dict[str, str]:
    return {
        f"{what}_{dev}": tool_command(hccn_tool, "-i", str(dev), flag, "-g")
        for dev in devices
        for what, flag in _HCCN_QUERIES.items()
    }


@dataclass(frozen=True)
class _Chip:
    device_id: int
    npu_id: int
    chip_id: int
    name: str
    chip: NpuChip
    per_chip: bool  # one device per chip (npu-smi printed Phy-IDs)


def _chips(info: NpuSmiInfo) -> list[_Chip]:
    """The devices npu-smi shows: one per chip where it prints Chip Phy-IDs (A3), else one per NPU."""
    out = []
    for npu in info.npus:
        per_chip = len(npu.chips) > 1 or any(c.phy_id is not None for c in npu.chips)
        if not per_chip:
            out.append(_Chip(npu.npu_id, npu.npu_id, npu.chips[0].chip_id, npu.name, npu.chips[0], False))
            continue
        for c in npu.chips:
            dev = c.phy_id if c.phy_id is not None else npu.npu_id * len(npu.chips) + c.chip_id
            out.append(_Chip(dev, npu.npu_id, c.chip_id, npu.name, c, True))
    return sorted(out, key=lambda c: c.device_id)


def _spod_steps(npu_smi: str, chips: list[_Chip]) -> dict[str, str]:
    """`npu-smi info -t spod-info -i <npu> -c <chip>` per chip (A3 only: other chips do not support it)."""
    return {
        f"spod_{c.npu_id}_{c.chip_id}": tool_command(
            npu_smi, "info", "-t", "spod-info", "-i", str(c.npu_id), "-c", str(c.chip_id)
        )
        for c in chips
    }


def _run_hccn(transport: Transport, steps: dict[str, str], timeout: float) -> dict[str, StepOutput]:
    """Run the hccn_tool (and spod-info) steps; those answered "busy" are retried once after a pause."""
    out = run_steps(transport, steps, timeout=timeout)
    busy = {k: v for k, v in steps.items() if k in out and "busy" in out[k].output.lower()}
    if busy:
        time.sleep(_BUSY_RETRY_S)
        out.update(run_steps(transport, busy, timeout=timeout))
    return out


def _parsed(parser, step: Optional[StepOutput], what: str, notes: list[str]):
    """``parser(step.output)``, or None with a note saying why it could not be read."""
    if step is None:
        return None
    if not step.ok:
        notes.append(f"{what}: exit {step.exit_code}: {step.output.strip()[-200:]}")
        return None
    try:
        return parser(step.output)
    except AscendParseError as exc:
        notes.append(f"{what}: {exc}")
        return None


def _device(
    chip: _Chip,
    info: NpuSmiInfo,
    hccn: dict[str, StepOutput],
    conf: dict[int, DeviceNic],
    notes: list[str],
) -> DeviceState:
    dev = chip.device_id
    ip_mask = _parsed(parse_hccn_ip, hccn.get(f"ip_{dev}"), f"NPU {dev} hccn_tool -ip -g", notes)
    source = "hccn_tool" if ip_mask else ""
    if ip_mask is None and dev in conf and conf[dev].address:
        ip_mask, source = (conf[dev].address, conf[dev].netmask), "hccn.conf"
        notes.append(f"NPU {dev}: device IP taken from /etc/hccn.conf")
    ip, netmask = ip_mask or (None, None)
    spod_step = hccn.get(f"spod_{chip.npu_id}_{chip.chip_id}")
    spod = _parsed(
        parse_npu_smi_spod_info, spod_step, f"NPU {chip.npu_id} chip {chip.chip_id} spod-info", notes
    )
    procs = info.processes_on(chip.npu_id)
    if chip.per_chip:
        procs = tuple(p for p in procs if p.chip_id == chip.chip_id)
    health = chip.chip.health if chip.per_chip else info.npu(chip.npu_id).health
    return DeviceState(
        device_id=dev,
        name=chip.name,
        health=health,
        ip=ip,
        netmask=netmask,
        ip_source=source,
        link=_parsed(parse_hccn_link, hccn.get(f"link_{dev}"), f"NPU {dev} hccn_tool -link -g", notes),
        net_health=_parsed(
            parse_hccn_net_health, hccn.get(f"health_{dev}"), f"NPU {dev} hccn_tool -net_health -g", notes
        ),
        processes=procs,
        npu_id=chip.npu_id,
        chip_id=chip.chip_id,
        hbm_total_mb=chip.chip.hbm_total_mb,
        super_device_id=str(spod.sdid) if spod else None,
        super_pod_id=str(spod.super_pod_id) if spod else None,
    )


def discover_node(transport: Transport, *, timeout: float = 60) -> NodeDiscovery:
    """Read one node over ``transport`` (see the module docstring)."""
    first = run_steps(transport, _first_steps(), timeout=timeout)
    hostname = first["hostname"].output.strip() if "hostname" in first else ""
    npu_smi, hccn_tool = _path(first.get("npu_smi_path")), _path(first.get("hccn_tool_path"))
    found = NodeDiscovery(transport.host, hostname, npu_smi, hccn_tool)
    if npu_smi is None:
        return found
    notes: list[str] = []
    info = _parsed(parse_npu_smi_info, first.get("npu_smi"), "npu-smi info", notes)
    if info is None:
        return NodeDiscovery(
            transport.host, hostname, npu_smi, hccn_tool, notes=tuple(notes), npu_smi_error=notes[0]
        )
    conf_step = first.get("hccn_conf")
    conf = _parsed(parse_hccn_conf, conf_step, "/etc/hccn.conf", []) if conf_step and conf_step.ok else None
    chips = _chips(info)
    steps: dict[str, str] = {}
    if hccn_tool is None:
        notes.append("hccn_tool not found: device IPs from /etc/hccn.conf, NIC state unknown")
    else:
        steps.update(_hccn_steps(hccn_tool, tuple(c.device_id for c in chips)))
    if any(len(n.chips) > 1 for n in info.npus):  # A3: two chips per NPU, SuperPoD ids per chip
        steps.update(_spod_steps(npu_smi, chips))
    hccn = _run_hccn(transport, steps, timeout) if steps else {}
    states = tuple(_device(c, info, hccn, conf or {}, notes) for c in chips)
    return NodeDiscovery(
        transport.host, hostname, npu_smi, hccn_tool, states, tuple(notes), driver_version=info.driver_version
    )


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, OrchestrateError) else f"{type(exc).__name__}: {exc}"


def discover(
    inventory: Any,
    *,
    transports: Optional[Mapping[str, Transport]] = None,
    pool: Optional[TransportPool] = None,
    max_workers: int = 32,
    timeout: float = 60,
) -> Discovery:
    """Discover every node of ``inventory`` in parallel and compare with it.

    ``transports`` (host -> Transport) replaces connecting for those hosts; ``pool`` keeps the
    connections open for the caller. Unreachable nodes are listed in ``failures``, never raised.
    """
    own = pool is None
    pool = pool or TransportPool(transports)
    try:
        result = fan_out(inventory.nodes, lambda t: discover_node(t, timeout=timeout), max_workers, pool=pool)
    finally:
        if own:
            pool.close()
    nodes = tuple(result.results[h] for h in result.hosts if h in result.results)
    failures = tuple((h, _describe(e)) for h, e in result.failures.items())
    return Discovery(nodes, failures, compare(inventory, nodes, failures))
