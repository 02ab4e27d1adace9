"""The preflight checks: pure functions from what was gathered on the nodes to one verdict per node.

Each check yields ``Check(host, name, status, detail)``. NPU and NIC checks reuse discovery's typed
differences; the others read :class:`NodeFacts`. Cross-node checks (hostnames, versions) compare the
nodes with each other; the clock is compared with the controller's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Optional, Sequence

from orchestrator.discover.model import Difference, DiffKind, NodeDiscovery
from orchestrator.doctor.facts import PACKAGES, NodeFacts


class Status(str, Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"


CHECKS = ("ssh", "hostname", "clock", "versions", "cann", "npus", "npu_procs", "nics", "disk", "ports")

# Which discovery differences feed which check (the rest of DiffKind never reaches doctor).
DIFF_CHECK = {
    DiffKind.HOSTNAME: "hostname",
    DiffKind.DUPLICATE_HOSTNAME: "hostname",
    DiffKind.NO_NPU_TOOLS: "npus",
    DiffKind.NPU_SMI_FAILED: "npus",
    DiffKind.MISSING_DEVICE: "npus",
    DiffKind.UNHEALTHY_NPU: "npus",
    DiffKind.HARDWARE: "npus",
    DiffKind.SUPER_POD: "npus",
    DiffKind.BUSY_NPU: "npu_procs",
    DiffKind.LINK_DOWN: "nics",
    DiffKind.NET_HEALTH: "nics",
    DiffKind.NO_DEVICE_IP: "nics",
    DiffKind.DEVICE_IP: "nics",
    DiffKind.DUPLICATE_DEVICE_IP: "nics",
}


@dataclass(frozen=True)
class Check:
    """One verdict; ``value`` is the few characters the table cell shows next to the status."""

    host: str
    name: str
    status: Status
    detail: str = ""
    value: str = ""


@dataclass(frozen=True)
class Limits:
    """Thresholds: clock skew (s) above which the clock check fails; free disk (GiB) below which the
    disk check fails (warns below twice that)."""

    max_clock_skew_s: float = 5.0
    min_free_gb: float = 5.0


def check_clock(facts: NodeFacts, limits: Limits) -> Check:
    low, high = (
        facts.clock_offset_s,
        facts.clock_offset_s + facts.clock_error_s,
    )  # the true offset lies within
    offset = min((low, high, 0.0), key=abs) if low <= 0 <= high else min((low, high), key=abs)
    detail, value = (
        f"{offset:+.2f} s vs controller (measured within [{low:+.2f}, {high:+.2f}])",
        f"{offset:+.1f}s",
    )
    if abs(offset) > limits.max_clock_skew_s:
        return Check(
            facts.host, "clock", Status.FAIL, f"{detail}, limit {limits.max_clock_skew_s:g} s", value
        )
    return Check(facts.host, "clock", Status.OK, detail, value)


def check_disk(facts: NodeFacts, limits: Limits) -> Check:
    free_gb = facts.disk_free_bytes / 2**30
    detail, value = f"{free_gb:.1f} GiB free in {facts.disk_path}", f"{free_gb:.0f}G"
    if free_gb < limits.min_free_gb:
        return Check(facts.host, "disk", Status.FAIL, f"{detail} (need {limits.min_free_gb:g})", value)
    status = Status.WARN if free_gb < 2 * limits.min_free_gb else Status.OK
    return Check(facts.host, "disk", status, detail, value)


def check_ports(facts: NodeFacts, ports: Sequence[int]) -> Check:
    if not ports:
        return Check(facts.host, "ports", Status.SKIP, "no ports needed")
    if facts.busy_ports:
        busy = ", ".join(map(str, facts.busy_ports))
        return Check(facts.host, "ports", Status.FAIL, f"in use: {busy} (another job still running?)", busy)
    return Check(facts.host, "ports", Status.OK, f"{_port_ranges(ports)} free")


def _port_ranges(ports: Sequence[int]) -> str:
    runs: list[list[int]] = []
    for p in sorted(set(ports)):
        if runs and p == runs[-1][-1] + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def _versions(facts: NodeFacts) -> tuple[str, ...]:
    return (facts.python,) + tuple(v or "missing" for _, v in facts.packages)


def check_versions(all_facts: Sequence[NodeFacts]) -> list[Check]:
    """Python, MindSpore and MindFormers: installed, and the same on every node (majority wins)."""
    labels = ("python",) + PACKAGES
    common = Counter(_versions(f) for f in all_facts).most_common(1)[0][0] if all_facts else ()
    checks = []
    for facts in all_facts:
        mine = _versions(facts)
        missing = [n for n, v in facts.packages if v is None]
        detail = ", ".join(f"{label} {v}" for label, v in zip(labels, mine))
        if missing:
            checks.append(
                Check(
                    facts.host,
                    "versions",
                    Status.FAIL,
                    f"{', '.join(missing)} not installed for {facts.executable}",
                )
            )
        elif mine != common:
            diff = [f"{label} {v} (others {c})" for label, v, c in zip(labels, mine, common) if v != c]
            checks.append(Check(facts.host, "versions", Status.FAIL, "; ".join(diff)))
        else:
            checks.append(Check(facts.host, "versions", Status.OK, detail, f"ms {mine[1]}"))
    return checks


def checks_from_differences(nodes: Sequence[NodeDiscovery], differences: Sequence[Difference]) -> list[Check]:
    """The hostname, npus, npu_procs and nics checks of each discovered node from discovery's
    differences: errors FAIL, warnings WARN, except that a process still holding an NPU FAILs."""
    checks = []
    for node in nodes:
        for name in ("hostname", "npus", "npu_procs", "nics"):
            mine = [d for d in differences if d.host == node.host and DIFF_CHECK.get(d.kind) == name]
            if mine:
                fail = any(d.severity == "error" or d.kind == DiffKind.BUSY_NPU for d in mine)
                detail = "; ".join(_short(d) for d in mine)
                checks.append(Check(node.host, name, Status.FAIL if fail else Status.WARN, detail))
            elif name == "hostname":
                checks.append(Check(node.host, name, Status.OK, f"{node.hostname} (unique)", node.hostname))
            elif not node.has_npu_tools:
                checks.append(Check(node.host, name, Status.SKIP, "no NPU tools on the node"))
            else:
                count = f"{len(node.devices)} NPU(s)"
                checks.append(
                    Check(node.host, name, Status.OK, f"{count} checked", count if name == "npus" else "")
                )
    return checks


def _short(d: Difference) -> str:
    return d.message if d.device is None else f"NPU {d.device}: {d.message}"


def unreachable(host: str, error: str) -> list[Check]:
    """The ssh check failed: every other check of that host is skipped."""
    return [Check(host, "ssh", Status.FAIL, error)] + [
        Check(host, name, Status.SKIP, "unreachable") for name in CHECKS if name != "ssh"
    ]


def probe_failed(host: str, error: str) -> list[Check]:
    """The node's python could not run the probe: the checks that needed it fail."""
    return [Check(host, name, Status.FAIL, error) for name in ("clock", "versions", "disk", "ports")]


def worst(statuses: Iterable[Status]) -> Optional[Status]:
    order = [Status.FAIL, Status.WARN, Status.OK, Status.SKIP]
    present = set(statuses)
    return next((s for s in order if s in present), None)
