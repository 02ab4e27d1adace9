"""Validate a rank table against HCCL's rules and a hardware profile; every problem at once.

Rules: status and version; no duplicate servers; server_id not a loopback address (the stock
hccl_tools defect); device ids unique per server and within the profile's range; device IPs present,
valid IPv4 and unique across the whole table; equal device counts per server; the profile's device
groups (Atlas 800: a node's devices within [0,4), [4,8) or all 8; Atlas A3: whole HiAM pairs) and NIC subnet plan (A2: one subnet
per node; Atlas 800: devices 0/4, 1/5, 2/6, 3/7 share one subnet each, the four differ); rank ids
0..world-1, each once, in HCCL's order (see :mod:`.build`); for 1.2 super device ids and SuperPoDs.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Mapping, Optional

from orchestrator.errors import Problem
from orchestrator.inventory.profiles import HardwareProfile
from orchestrator.ranktable.model import STATUS_COMPLETED, VERSIONS, RankTable

DEFAULT_NETMASK = "255.255.255.0"  # when the device's netmask is not known
NetMasks = Mapping[tuple[str, int], str]  # (server_id, physical device id) -> netmask


def _where(i: int, j: Optional[int] = None, key: str = "") -> str:
    text = f"server_list[{i}]"
    if j is not None:
        text += f".device[{j}]"
    return f"{text}.{key}" if key else text


def _ip(text: str) -> Optional[int]:
    """The IPv4 address ``text`` as an int, None when it is not one (as ``ipaddress`` decides; dotted
    decimal without leading zeros is read here directly, a table of thousands of NICs being common)."""
    parts = text.split(".")
    if len(parts) == 4 and all(p.isascii() and p.isdigit() and len(p) <= 3 and (p == "0" or p[0] != "0")
                               for p in parts):  # fmt: skip
        a, b, c, d = (int(p) for p in parts)
        if max(a, b, c, d) <= 255:
            return (a << 24) | (b << 16) | (c << 8) | d
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        return None


@lru_cache(maxsize=64)
def _prefix(mask: str) -> int:
    """The prefix length of a netmask (``255.255.255.0`` or ``24``)."""
    return ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen


def _network(ip: int, mask: str) -> tuple[int, int]:
    """(network address, prefix length) of ``ip`` in a ``mask`` subnet; sorts as IPv4Network does."""
    prefix = _prefix(mask)
    bits = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    return ip & bits, prefix


def _net_text(net: tuple[int, int]) -> str:
    return f"{ipaddress.IPv4Address(net[0])}/{net[1]}"


def _header(t: RankTable, src: str) -> list[Problem]:
    out = []
    if t.version not in VERSIONS:
        out.append(
            Problem(src, "version", f"{t.version!r} is not supported", f"use one of {', '.join(VERSIONS)}")
        )
    if t.status != STATUS_COMPLETED:
        out.append(
            Problem(
                src,
                "status",
                f'is {t.status!r}; HCCL waits while it is not "completed"',
                'set "status": "completed" once the table is final',
            )
        )
    if not t.servers:
        out.append(Problem(src, "server_list", "is empty", "add one entry per node"))
    return out


def _servers(t: RankTable, src: str) -> list[Problem]:
    out, seen = [], {}
    for i, s in enumerate(t.servers):
        if s.server_id in seen:
            out.append(
                Problem(
                    src,
                    _where(i, key="server_id"),
                    f"{s.server_id!r} duplicates server_list[{seen[s.server_id]}]",
                    "list each node once (a duplicated per-node file would silently grow the world)",
                )
            )
        seen.setdefault(s.server_id, i)
        addr = _ip(s.server_id)
        if s.server_id.strip().lower() == "localhost" or (addr is not None and addr >> 24 == 127):
            out.append(
                Problem(
                    src,
                    _where(i, key="server_id"),
                    f"{s.server_id!r} is a loopback address",
                    "use the address other nodes reach this node on (the stock hccl_tools takes "
                    "127.0.x.1 when the hostname resolves to loopback)",
                )
            )
        if not s.devices:
            out.append(
                Problem(src, _where(i, key="device"), "has no devices", "give the node at least one device")
            )
    counts = sorted({len(s.devices) for s in t.servers})
    if len(counts) > 1:
        per = ", ".join(f"{s.server_id}: {len(s.devices)}" for s in t.servers)
        out.append(
            Problem(
                src,
                "server_list",
                f"servers have unequal device counts ({per})",
                "use the same number of devices on every node",
            )
        )
    return out


def _devices(t: RankTable, src: str, profile: Optional[HardwareProfile]) -> list[Problem]:
    out, ips = [], {}
    need_ip = profile is None or profile.accelerator
    for i, s in enumerate(t.servers):
        ids = {}
        for j, d in enumerate(s.devices):
            dev = int(d.device_id)
            if dev in ids:
                out.append(
                    Problem(
                        src,
                        _where(i, j, "device_id"),
                        f"device {dev} is listed twice on {s.server_id}",
                        "list each device once",
                    )
                )
            ids.setdefault(dev, j)
            if profile is not None and dev >= profile.devices_per_node:
                out.append(
                    Problem(
                        src,
                        _where(i, j, "device_id"),
                        f"device {dev} is out of range for {profile.name} (0..{profile.devices_per_node - 1})",
                        "use physical NPU ids (the N of /dev/davinciN)",
                    )
                )
            if not d.device_ip:
                if need_ip:
                    out.append(
                        Problem(
                            src,
                            _where(i, j, "device_ip"),
                            f"is empty for device {dev} of {s.server_id}",
                            "set the NPU NIC address (hccn_tool -i N -ip -g, or address_N in /etc/hccn.conf)",
                        )
                    )
                continue
            if _ip(d.device_ip) is None:
                out.append(
                    Problem(
                        src,
                        _where(i, j, "device_ip"),
                        f"{d.device_ip!r} is not an IPv4 address",
                        "use the NPU NIC address",
                    )
                )
            elif d.device_ip in ips:
                a, b = ips[d.device_ip]
                out.append(
                    Problem(
                        src,
                        _where(i, j, "device_ip"),
                        f"{d.device_ip} is also {_where(a, b)} ({t.servers[a].server_id} device {t.servers[a].devices[b].device_id})",
                        "give every NPU NIC its own address",
                    )
                )
            ips.setdefault(d.device_ip, (i, j))
    return out


def _groups(t: RankTable, src: str, profile: HardwareProfile) -> list[Problem]:
    out = []
    for i, s in enumerate(t.servers):
        why = profile.pair_problem({int(d.device_id) for d in s.devices})
        if why:
            out.append(Problem(src, _where(i, key="device"), f"{s.server_id}: {why}", "use whole HiAM pairs"))
    if not profile.device_groups:
        return out
    full = set(range(profile.devices_per_node))
    for i, s in enumerate(t.servers):
        ids = {int(d.device_id) for d in s.devices}
        if ids and not any(ids <= set(g) and (set(g) != full or ids == full) for g in profile.device_groups):
            allowed = " or ".join(
                f"[{min(g)},{max(g) + 1})" if set(g) != full else f"all {len(g)}"
                for g in profile.device_groups
            )
            out.append(
                Problem(
                    src,
                    _where(i, key="device"),
                    f"devices {sorted(ids)} of {s.server_id} break {profile.name}'s device groups",
                    f"use devices within {allowed}",
                )
            )
    return out


def _subnets(t: RankTable, src: str, profile: HardwareProfile, netmasks: NetMasks) -> list[Problem]:
    out = []
    for i, s in enumerate(t.servers):
        nets = {}
        for d in s.devices:
            ip = _ip(d.device_ip)
            if ip is not None:
                mask = netmasks.get((s.server_id, int(d.device_id)), DEFAULT_NETMASK)
                nets[int(d.device_id)] = _network(ip, mask)
        by_net: dict[tuple[int, int], list[tuple[int, ...]]] = {}
        for group in profile.nic_groups:
            found = {dev: nets[dev] for dev in group if dev in nets}
            distinct = sorted(set(found.values()))
            if len(distinct) > 1:
                detail = ", ".join(f"{dev}: {_net_text(net)}" for dev, net in sorted(found.items()))
                out.append(
                    Problem(
                        src,
                        _where(i, key="device"),
                        f"devices {sorted(found)} of {s.server_id} must share one NIC subnet ({detail})",
                        f"put NPU NICs {list(group)} in one subnet ({profile.name} NIC plan)",
                    )
                )
            elif distinct:
                by_net.setdefault(distinct[0], []).append(group)
        for net, groups in sorted(by_net.items()):
            if len(groups) > 1:
                out.append(
                    Problem(
                        src,
                        _where(i, key="device"),
                        f"NIC groups {', '.join(str(list(g)) for g in groups)} of {s.server_id} share subnet {_net_text(net)}",
                        f"{profile.name} puts each NIC group {[list(g) for g in profile.nic_groups]} in its own subnet",
                    )
                )
    return out


def _ranks(t: RankTable, src: str) -> list[Problem]:
    ranks = [int(d.rank_id) for _, d in t.devices()]
    world = len(ranks)
    if sorted(ranks) != list(range(world)):
        dupes = sorted({r for r in ranks if ranks.count(r) > 1})
        missing = sorted(set(range(world)) - set(ranks))
        detail = "; ".join(
            x for x in (f"duplicated {dupes}" if dupes else "", f"missing {missing}" if missing else "") if x
        )
        return [
            Problem(
                src,
                "rank_id",
                f"rank ids are not 0..{world - 1} each once ({detail})",
                "re-rank with `orchestrate ranktable merge`",
            )
        ]
    order = sorted(
        (((s.server_id, i, int(d.device_id)), s, d) for i, s in enumerate(t.servers) for d in s.devices),
        key=lambda item: item[0],
    )
    for expected, (_, s, d) in enumerate(order):
        if int(d.rank_id) != expected:
            return [
                Problem(
                    src,
                    "rank_id",
                    f"{s.server_id} device {d.device_id} has rank {d.rank_id}, HCCL order "
                    f"(server_id string order, then device id) gives {expected}",
                    "re-rank with `orchestrate ranktable merge`",
                )
            ]
    return []


def _super_pods(t: RankTable, src: str) -> list[Problem]:
    out, seen = [], {}
    for i, s in enumerate(t.servers):
        for j, d in enumerate(s.devices):
            if not d.super_device_id:
                out.append(
                    Problem(
                        src,
                        _where(i, j, "super_device_id"),
                        "missing (version 1.2 needs it per device)",
                        "set it from the node's SuperPoD device id (SDID)",
                    )
                )
            elif d.super_device_id in seen:
                out.append(
                    Problem(
                        src,
                        _where(i, j, "super_device_id"),
                        f"{d.super_device_id} duplicates {seen[d.super_device_id]}",
                        "use unique SDIDs",
                    )
                )
            else:
                seen[d.super_device_id] = _where(i, j)
    listed = [sid for p in t.super_pods for sid in p.server_ids]
    for sid in sorted({s.server_id for s in t.servers}):
        if listed.count(sid) != 1:
            out.append(
                Problem(
                    src,
                    "super_pod_list",
                    f"server {sid} is in {listed.count(sid)} SuperPoDs",
                    "list every server in exactly one super_pod_list entry",
                )
            )
    for sid in sorted(set(listed) - {s.server_id for s in t.servers}):
        out.append(
            Problem(
                src, "super_pod_list", f"server {sid} is not in server_list", "remove it or add the server"
            )
        )
    return out


def check_rank_table(
    table: RankTable,
    profile: Optional[HardwareProfile],
    source: str = "<rank table>",
    netmasks: Optional[NetMasks] = None,
) -> list[Problem]:
    """Every problem of ``table`` (empty list: valid). ``profile`` None skips the profile rules;
    ``netmasks`` gives known device netmasks, others count as /24."""
    problems = _header(table, source) + _servers(table, source) + _devices(table, source, profile)
    if profile is not None:
        problems += _groups(table, source, profile) + _subnets(table, source, profile, netmasks or {})
    problems += _ranks(table, source)
    if table.version == "1.2":
        problems += _super_pods(table, source)
    return problems
