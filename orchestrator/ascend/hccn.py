"""Parse `hccn_tool -i N -<query> -g` answers and `/etc/hccn.conf` (device NIC settings).

`-i` takes the device's physical id (the N of /dev/davinciN). hccn_tool prints errors such as
`Get ipconf failed, because no ip was preset there!` or `hccn_tool is busy, please try again`;
pass stderr along with stdout and these raise :class:`AscendToolError` / :class:`AscendToolBusy`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Optional

from orchestrator.ascend.common import AscendParseError, raise_tool_error

_IPV4 = r"(\d{1,3}(?:\.\d{1,3}){3})"


@dataclass(frozen=True)
class PingResult:
    """`hccn_tool -i N -ping -g address IP`: counts from the summary line, times of answered seqs."""

    sent: int
    received: int
    loss_percent: float
    target: Optional[str] = None
    times_ms: tuple[float, ...] = ()
    timeouts: tuple[int, ...] = ()  # seq numbers printed as `recv time out seq=N`

    @property
    def ok(self) -> bool:
        return self.sent > 0 and self.received == self.sent


@dataclass(frozen=True)
class DeviceNic:
    """One device's NIC settings from /etc/hccn.conf (any field may be missing)."""

    address: Optional[str] = None
    netmask: Optional[str] = None
    netdetect: Optional[str] = None
    gateway: Optional[str] = None
    send_arp_status: Optional[str] = None


def _search(tool: str, pattern: str, text: str, what: str) -> re.Match:
    found = re.search(pattern, text, re.IGNORECASE | re.MULTILINE)
    if not found:
        raise_tool_error(tool, text, f"no {what}")
        raise AscendParseError(tool, f"no {what} found" if text.strip() else f"empty output, expected {what}")
    return found


def _ip(tool: str, value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise AscendParseError(tool, "not an IPv4 address", line=value) from None


def parse_hccn_ip(text: str) -> tuple[str, str]:
    """`-ip -g` -> (ipaddr, netmask)."""
    tool = "hccn_tool -ip -g"
    addr = _search(tool, rf"^\s*ipaddr\s*:\s*{_IPV4}\s*$", text, "`ipaddr:` line").group(1)
    mask = _search(tool, rf"^\s*netmask\s*:\s*{_IPV4}\s*$", text, "`netmask:` line").group(1)
    return _ip(tool, addr), _ip(tool, mask)


def parse_hccn_link(text: str) -> str:
    """`-link -g` -> "UP" | "DOWN"."""
    return (
        _search("hccn_tool -link -g", r"link status\s*:\s*(UP|DOWN)\b", text, "link status").group(1).upper()
    )


def parse_hccn_net_health(text: str) -> str:
    """`-net_health -g` -> "Success", "Init", "Fault", "Socket fail", "Receive timeout", ..."""
    return _search(
        "hccn_tool -net_health -g", r"net health status\s*:\s*(\S.*?)\s*$", text, "net health"
    ).group(1)


def parse_hccn_netdetect(text: str) -> str:
    """`-netdetect -g` -> address; both `netdetect address:` and the newer `netdetect addr:`."""
    found = _search(
        "hccn_tool -netdetect -g", rf"netdetect addr(?:ess)?\s*:\s*{_IPV4}", text, "netdetect address"
    )
    return found.group(1)


def parse_hccn_gateway(text: str) -> tuple[str, Optional[str]]:
    """`-gateway -g` -> (gateway, interface or None): `default gateway:A.B.C.D, Iface:eth0`."""
    found = _search(
        "hccn_tool -gateway -g",
        rf"default gateway\s*:\s*{_IPV4}(?:\s*,\s*Iface\s*:\s*(\S+))?",
        text,
        "default gateway",
    )
    return found.group(1), found.group(2)


def parse_hccn_ping(text: str) -> PingResult:
    """`-ping -g address IP` -> :class:`PingResult` (lost packets print `recv time out seq=N`)."""
    tool = "hccn_tool -ping -g"
    summary = _search(
        tool,
        r"(\d+)\s+packets? transmitted,\s*(\d+)\s+received,\s*([\d.]+)%\s*packet loss",
        text,
        "`N packets transmitted, M received` summary",
    )
    target = re.search(rf"PING\s+{_IPV4}", text)
    times = tuple(float(t) for t in re.findall(r"recv seq=\d+\s*,\s*time\s*=\s*([\d.]+)\s*ms", text))
    lost = tuple(int(s) for s in re.findall(r"recv time ?out seq=(\d+)", text))
    sent, received = int(summary.group(1)), int(summary.group(2))
    if received > sent:
        raise AscendParseError(tool, "more packets received than sent", line=summary.group(0))
    return PingResult(
        sent, received, float(summary.group(3)), target.group(1) if target else None, times, lost
    )


_CONF_LINE = re.compile(r"^(address|netmask|netdetect|gateway|send_arp_status)_(\d+)\s*=\s*(\S*)\s*$")


def parse_hccn_conf(text: str) -> dict[int, DeviceNic]:
    """`/etc/hccn.conf` -> {physical device id: DeviceNic}, sorted by id.

    Blank lines, `#` comments and lines without `=` are skipped; other `key_N=value` keys (e.g. TLS
    settings) are ignored; a known key with a bad value raises AscendParseError naming the line.
    """
    fields: dict[int, dict[str, str]] = {}
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        found = _CONF_LINE.match(line)
        if not found:
            continue
        key, dev, value = found.group(1), int(found.group(2)), found.group(3)
        if key != "send_arp_status" and value:
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise AscendParseError(
                    "/etc/hccn.conf", f"{key}_{dev} is not an IPv4 address", no, raw
                ) from None
        fields.setdefault(dev, {})[key] = value or None
    return {dev: DeviceNic(**fields[dev]) for dev in sorted(fields)}
