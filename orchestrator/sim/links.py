"""Links with real limits: a bandwidth (and optionally a latency) on every link of a simulated cluster.

Each node's veth gets a token-bucket filter (``tc qdisc ... tbf``) at both ends: the node's ``eth0``
limits what the node sends, the host-side end (in the bridge) what it receives. The bridge device's own
egress carries what the controller (this machine) sends to the nodes, so its filter models the
controller's uplink. With a delay, a ``netem`` qdisc under each filter adds it (per direction, so the
round trip gains twice the delay); kernels without ``sch_netem`` get a clear error instead.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass
from typing import Optional

from orchestrator.errors import InputError, SimError
from orchestrator.sim import netns
from orchestrator.sim.state import ClusterState

RATE_RE = re.compile(r"^(\d+(?:\.\d+)?)(kbit|mbit|gbit|kbps|mbps|gbps)$", re.IGNORECASE)
BITS = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9}
QUEUE_S = 0.02  # a filter queues up to this much traffic before it drops (a switch port's shallow buffer)


@dataclass(frozen=True)
class LinkLimits:
    """``rate``: bits per second of every link; ``delay_ms``: one-way latency added in each direction."""

    rate_bps: int
    delay_ms: float = 0.0

    @property
    def label(self) -> str:
        rate = f"{self.rate_bps / 1e6:g} Mbit/s"
        return rate + (f", +{self.delay_ms:g} ms each way" if self.delay_ms else "")

    def to_dict(self) -> dict:
        return asdict(self)


def parse_rate(text: str) -> int:
    """Bits per second from ``200mbit``, ``1gbit``, ``25MBps`` (bytes); InputError naming the fix."""
    m = RATE_RE.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise InputError(
            f"--link-rate {text!r}: give a positive number with a unit, e.g. 200mbit, 1gbit, 25mbps"
        )
    bps = int(float(m.group(1)) * BITS[m.group(2).lower()])
    if bps < 8000:
        raise InputError(f"--link-rate {text!r}: at least 8kbit")
    return bps


def limits_from(rate: Optional[str], delay_ms: Optional[float]) -> Optional[LinkLimits]:
    """The limits the options ask for (None: no ``--link-rate``, unlimited links)."""
    if rate is None:
        if delay_ms:
            raise InputError("--link-delay needs --link-rate (the delay rides on the rate filter)")
        return None
    if delay_ms is not None and not 0 <= delay_ms <= 10_000:
        raise InputError(f"--link-delay {delay_ms}: give 0..10000 ms")
    return LinkLimits(parse_rate(rate), float(delay_ms or 0.0))


def _tbf_args(limits: LinkLimits) -> list[str]:
    byte_rate = limits.rate_bps / 8
    burst = max(64 << 10, int(byte_rate / 250))  # >= one GSO packet (veths pass 64 KiB packets)
    queue = max(2 * burst, int(byte_rate * QUEUE_S))
    return ["tbf", "rate", f"{limits.rate_bps}bit", "burst", str(burst), "limit", str(queue)]


def _tc(prefix: list[str], dev: str, limits: LinkLimits) -> None:
    """Replace ``dev``'s root qdisc by the rate filter (and the delay under it)."""
    base = [*prefix, "tc", "qdisc", "replace", "dev", dev]
    netns.run([*base, "root", "handle", "1:", *_tbf_args(limits)])
    if limits.delay_ms:
        proc = subprocess.run([*prefix, "tc", "qdisc", "replace", "dev", dev, "parent", "1:1", "handle", "10:",
                               "netem", "delay", f"{limits.delay_ms:g}ms"], capture_output=True, text=True)  # fmt: skip
        if proc.returncode != 0:
            raise SimError(f"--link-delay needs the kernel's netem qdisc (sch_netem) on this machine: "
                           f"{proc.stderr.strip()}; leave --link-delay out to limit the rate only")  # fmt: skip


def apply(st: ClusterState, limits: LinkLimits) -> None:
    """Limit every node link (both directions) and the controller's uplink (the bridge's egress)."""
    netns.require_root("link limits")
    for n in st.nodes:
        _tc(["ip", "netns", "exec", n.netns], "eth0", limits)  # what the node sends
        _tc([], n.veth, limits)  # what the node receives
    _tc([], st.bridge, limits)  # what the controller sends to the nodes


def show(dev: str, ns: Optional[str] = None) -> str:
    """``tc qdisc show`` of ``dev`` (in node namespace ``ns``): what the kernel actually applies."""
    prefix = ["ip", "netns", "exec", ns] if ns else []
    return netns.run([*prefix, "tc", "qdisc", "show", "dev", dev], check=False).stdout.strip()
