"""Run the preflight checks on every node in parallel and collect one report.

Per node, over one connection: the facts probe (node python), discovery (hostname, NPUs, NICs, the
chips against the profile) and, on Ascend profiles, the CANN install (:mod:`.cann`). Then the checks
of :mod:`.checks`. Verdict: ``failed`` when any check FAILs; with ``strict`` a warning
fails too. The CLI maps failed to exit code 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from orchestrator.ascend.versions import DEFAULT_ASCEND_ROOT
from orchestrator.discover.diff import compare
from orchestrator.discover.discover import discover_node
from orchestrator.discover.model import NodeDiscovery
from orchestrator.doctor.cann import CannFacts, check_cann, gather_cann
from orchestrator.doctor.checks import (
    CHECKS,
    Check,
    Limits,
    Status,
    check_clock,
    check_disk,
    check_ports,
    check_versions,
    checks_from_differences,
    probe_failed,
    unreachable,
)
from orchestrator.doctor.facts import NodeFacts, probe_facts
from orchestrator.errors import OrchestrateError
from orchestrator.transport import Transport, TransportPool, fan_out

SCHEDULER_PORT = 8118  # MS_SCHED_PORT of the dynamic cluster (msrun's default master port)
HCCL_PORTS = tuple(range(60000, 60016))  # HCCL_IF_BASE_PORT default range


def job_ports(inventory: Any, scheduler_port: int = SCHEDULER_PORT) -> tuple[int, ...]:
    """Ports a job needs free on the nodes: the scheduler's (dynamic cluster) and HCCL's (Ascend)."""
    ports: list[int] = []
    if inventory.cluster.effective_launch_mode == "dynamic_cluster":
        ports.append(scheduler_port)
    if inventory.cluster.hardware.accelerator:
        ports.extend(HCCL_PORTS)
    return tuple(ports)


@dataclass(frozen=True)
class NodeProbe:
    """What one node gave: facts or the error of the probe, discovery or its error."""

    facts: Optional[NodeFacts] = None
    facts_error: Optional[str] = None
    found: Optional[NodeDiscovery] = None
    found_error: Optional[str] = None
    cann: Optional[CannFacts] = None
    cann_error: str = ""


def ascend_root(spec: Any, accelerator: bool) -> Optional[str]:
    """The node's Ascend install root: the inventory's, else the standard one on Ascend profiles."""
    root = getattr(spec, "ascend_root", None)
    return root or (DEFAULT_ASCEND_ROOT if accelerator else None)


@dataclass(frozen=True)
class DoctorReport:
    hosts: tuple[str, ...]
    checks: tuple[Check, ...]
    strict: bool = False

    def get(self, host: str, name: str) -> Check:
        return next(c for c in self.checks if c.host == host and c.name == name)

    def count(self, status: Status) -> int:
        return sum(c.status == status for c in self.checks)

    @property
    def failed(self) -> bool:
        return self.count(Status.FAIL) > 0 or (self.strict and self.count(Status.WARN) > 0)

    def to_dict(self) -> dict:
        return {
            "ok": not self.failed,
            "nodes": {
                h: {
                    c.name: {"status": c.status.value, "detail": c.detail} for c in self.checks if c.host == h
                }
                for h in self.hosts
            },
        }


class PreflightFailed(OrchestrateError):
    """Doctor found a failing check on some node (the table says which)."""

    exit_code = 1


def _error_text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, OrchestrateError) else f"{type(exc).__name__}: {exc}"


def _probe_node(
    transport: Transport, spec: Any, ports: Sequence[int], timeout: float, accelerator: bool
) -> NodeProbe:
    facts = found = cann = None
    facts_error = found_error = None
    cann_error = ""
    try:
        facts = probe_facts(transport, spec.python, spec.workdir, ports, timeout=timeout)
    except OrchestrateError as exc:
        facts_error = str(exc)
    try:
        found = discover_node(transport, timeout=timeout)
    except OrchestrateError as exc:
        found_error = str(exc)
    root = ascend_root(spec, accelerator)
    if root:
        try:
            cann = gather_cann(transport, root, timeout=timeout)
        except OrchestrateError as exc:
            cann_error = str(exc)
    return NodeProbe(facts, facts_error, found, found_error, cann, cann_error)


def _node_checks(spec: Any, probe: NodeProbe, limits: Limits, ports: Sequence[int]) -> list[Check]:
    host = spec.host
    reached = "local node (no SSH)" if spec.local else "reached, host key verified"
    checks = [Check(host, "ssh", Status.OK, reached)]  # else fan_out had failed
    if probe.facts is None:
        checks += probe_failed(host, probe.facts_error or "no facts")
    else:
        checks += [
            check_clock(probe.facts, limits),
            check_disk(probe.facts, limits),
            check_ports(probe.facts, ports),
        ]
    driver = probe.found.driver_version if probe.found is not None else None
    checks.append(check_cann(host, probe.cann, driver, probe.cann_error))
    if probe.found is None:
        error = probe.found_error or "discovery failed"
        checks += [
            Check(host, name, Status.FAIL, error) for name in ("hostname", "npus", "npu_procs", "nics")
        ]
    return checks


def run_doctor(
    inventory: Any,
    *,
    transports: Optional[Mapping[str, Transport]] = None,
    pool: Optional[TransportPool] = None,
    limits: Optional[Limits] = None,
    ports: Optional[Sequence[int]] = None,
    strict: bool = False,
    max_workers: int = 32,
    timeout: float = 60,
) -> DoctorReport:
    """Check every node of ``inventory`` in parallel; never raises for a node's problem."""
    limits = limits or Limits()
    ports = job_ports(inventory) if ports is None else tuple(ports)
    specs = {n.host: n for n in inventory.nodes}
    own = pool is None
    pool = pool or TransportPool(transports)
    try:
        accel = inventory.cluster.hardware.accelerator
        result = fan_out(
            inventory.nodes,
            lambda t: _probe_node(t, specs[t.host], ports, timeout, accel),
            max_workers,
            pool=pool,
        )
    finally:
        if own:
            pool.close()
    hosts = tuple(n.host for n in inventory.nodes)
    checks: list[Check] = []
    for host, exc in result.failures.items():
        checks += unreachable(host, _error_text(exc))
    probes = {h: result.results[h] for h in hosts if h in result.results}
    for host, probe in probes.items():
        checks += _node_checks(specs[host], probe, limits, ports)
    checks += check_versions([p.facts for p in probes.values() if p.facts is not None])
    found = [p.found for p in probes.values() if p.found is not None]
    checks += checks_from_differences(found, compare(inventory, found, ()))
    order = {name: i for i, name in enumerate(CHECKS)}
    checks.sort(key=lambda c: (hosts.index(c.host), order[c.name]))
    return DoctorReport(hosts, tuple(checks), strict)
