"""What discovery found on the nodes, and how it differs from the inventory (typed, frozen)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional

from orchestrator.ascend import NpuProcess
from orchestrator.errors import OrchestrateError


class DiscoveryFailed(OrchestrateError):
    """Some node could not be read, or differs from the inventory in a way that breaks a job."""

    exit_code = 1


@dataclass(frozen=True)
class DeviceState:
    """One device (NPU, or chip of an Atlas A3 NPU) of a node as read there.

    ``device_id`` is the physical id (the N of /dev/davinciN: npu-smi's Chip Phy-ID when printed, else
    the NPU id); ``npu_id``/``chip_id`` address it for npu-smi (``-i``/``-c``). ``ip_source`` is
    "hccn_tool", "hccn.conf" (the fallback when hccn_tool failed) or "" (unknown); ``link`` ("UP"/"DOWN")
    and ``net_health`` ("Success", "Fault", ...) are None when unreadable. ``hbm_total_mb`` is npu-smi's
    HBM total; ``super_device_id``/``super_pod_id`` come from `npu-smi info -t spod-info` (A3 only).
    """

    device_id: int
    name: str
    health: str
    ip: Optional[str] = None
    netmask: Optional[str] = None
    ip_source: str = ""
    link: Optional[str] = None
    net_health: Optional[str] = None
    processes: tuple[NpuProcess, ...] = ()
    npu_id: Optional[int] = None
    chip_id: int = 0
    hbm_total_mb: Optional[int] = None
    super_device_id: Optional[str] = None
    super_pod_id: Optional[str] = None


@dataclass(frozen=True)
class NodeDiscovery:
    """One reachable node: its hostname, the Ascend tools found (None: absent) and its NPUs.

    ``npu_smi_error`` is set when npu-smi exists but its output could not be used; ``notes`` records
    what else could not be read (a tool error, a parse error, a fallback taken). ``driver_version`` is
    the one npu-smi prints in its header.
    """

    host: str
    hostname: str
    npu_smi: Optional[str] = None
    hccn_tool: Optional[str] = None
    devices: tuple[DeviceState, ...] = ()
    notes: tuple[str, ...] = ()
    npu_smi_error: Optional[str] = None
    driver_version: Optional[str] = None

    @property
    def has_npu_tools(self) -> bool:
        return self.npu_smi is not None

    @property
    def device_ids(self) -> tuple[int, ...]:
        return tuple(d.device_id for d in self.devices)

    def device(self, device_id: int) -> Optional[DeviceState]:
        return next((d for d in self.devices if d.device_id == device_id), None)

    @property
    def super_pod_id(self) -> Optional[str]:
        """The SuperPoD id its chips report (A3), when they all report the same one."""
        ids = {d.super_pod_id for d in self.devices if d.super_pod_id is not None}
        return ids.pop() if len(ids) == 1 else None


class DiffKind(str, Enum):
    """The kinds of difference between what a node reports and what the inventory says."""

    UNREACHABLE = "unreachable"
    HOSTNAME = "hostname"
    DUPLICATE_HOSTNAME = "duplicate_hostname"
    NO_NPU_TOOLS = "no_npu_tools"
    NPU_SMI_FAILED = "npu_smi_failed"
    MISSING_DEVICE = "missing_device"
    DEVICE_IP = "device_ip"
    NO_DEVICE_IP = "no_device_ip"
    DUPLICATE_DEVICE_IP = "duplicate_device_ip"
    UNHEALTHY_NPU = "unhealthy_npu"
    LINK_DOWN = "link_down"
    NET_HEALTH = "net_health"
    BUSY_NPU = "busy_npu"
    HARDWARE = "hardware"  # the chips are not the inventory profile's (name or HBM)
    SUPER_POD = "super_pod"  # an A3 chip without a readable, unique super device id


@dataclass(frozen=True)
class Difference:
    """One difference on one host (``device``: the NPU concerned, if any). ``severity``: error|warning."""

    host: str
    kind: DiffKind
    message: str
    device: Optional[int] = None
    expected: str = ""
    found: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        where = self.host if self.device is None else f"{self.host} NPU {self.device}"
        return f"{where}: {self.kind.value}: {self.message}"


@dataclass(frozen=True)
class Discovery:
    """Every node's findings (inventory order), the unreachable ones, and the differences."""

    nodes: tuple[NodeDiscovery, ...]
    failures: tuple[tuple[str, str], ...] = ()  # (host, error message)
    differences: tuple[Difference, ...] = ()

    def node(self, host: str) -> Optional[NodeDiscovery]:
        return next((n for n in self.nodes if n.host == host), None)

    @property
    def errors(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if d.severity == "error")

    @property
    def ok(self) -> bool:
        return not self.failures and not self.errors
