"""Value and cross-node rules of an inventory: hosts, node paths, devices against the hardware profile.

Each rule reports through a :class:`Checker`; nothing here raises.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections import Counter
from typing import Optional, Sequence

from orchestrator.inventory.fields import Checker
from orchestrator.inventory.model import ClusterSettings, NodeSpec
from orchestrator.inventory.profiles import HardwareProfile
from orchestrator.transport.jump import parse_jump

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def check_host(c: Checker, host: str, path: str) -> bool:
    """An IP address or a DNS name (RFC 1123), without user@ or :port."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(host) <= 253 and all(_LABEL.fullmatch(label) for label in labels):
        return True
    if "@" in host:
        fix = "put the user in `ssh: {user: ...}` and only the address in `host`"
    elif host.count(":") == 1:
        fix = "put the port in `ssh: {port: ...}` and only the address in `host`"
    else:
        fix = "write an IP address or a hostname"
    c.add(path, f"{host!r} is not a valid address or hostname", fix)
    return False


def host_key(host: str) -> str:
    """A canonical form for comparing hosts (IPv6 compressed, names lower case)."""
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host.lower().rstrip(".")


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower().rstrip(".") == "localhost"


def check_node_path(
    c: Checker, value: str, path: str, local: bool, example: str = "/data/orchestrate"
) -> None:
    """Node paths must be absolute; ``~`` is only expanded (by the caller) on local nodes."""
    if posixpath.isabs(value):
        return
    if value.startswith("~") and not local:
        c.add(
            path,
            f"{value!r}: `~` is expanded only for local nodes; a remote node needs an absolute path",
            f"write the full path, e.g. {example}",
        )
    else:
        c.add(path, f"{value!r} is not an absolute path", f"write an absolute path, e.g. {example}")


def check_devices(c: Checker, raw: Sequence, path: str, profile: Optional[HardwareProfile]) -> list[int]:
    """Ids in range and unique; on profiles with device groups, within one group or all of them; on
    Atlas A3, one chip or whole HiAM pairs (docs/ascend-cluster.md §8).

    Returns the valid ids (on the cpu profile, any non-negative id: they are rank slots).
    """
    if not raw:
        c.add(path, "no devices", "list at least one device id, or omit `devices` to use all")
        return []
    high = profile.devices_per_node - 1 if profile is not None and profile.accelerator else None
    checked = (c.check_int(dev, f"{path}[{i}]", 0, high) for i, dev in enumerate(raw))
    devices = [dev for dev in checked if dev is not None]
    for dev, count in sorted(Counter(devices).items()):
        if count > 1:
            c.add(path, f"device {dev} is listed {count} times", "list each device once")
    pairs = profile.pair_problem(set(devices)) if profile is not None else None
    if pairs:
        c.add(path, pairs, "use one chip, or both chips of each HiAM pair (0/1, 2/3, ...)")
    if profile is None or not profile.device_groups:
        return devices
    used = set(devices)
    full = set(range(profile.devices_per_node))
    allowed = [set(g) for g in profile.device_groups if set(g) != full]
    if used != full and not any(used <= g for g in allowed):
        groups = " or ".join(f"[{g[0]}, {g[-1] + 1})" for g in profile.device_groups if set(g) != full)
        c.add(
            path,
            f"devices {sorted(used)} break the {profile.name} rule: a node's devices must lie "
            f"within {groups} or be all {profile.devices_per_node}",
            "choose devices from one group",
        )
    return devices


def check_device_ips(c: Checker, ips: Sequence[str], path: str, device_count: int) -> None:
    """IPv4 addresses, one per device (duplicates are checked across the cluster)."""
    for i, ip in enumerate(ips):
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            c.add(
                f"{path}[{i}]",
                f"{ip!r} is not an IPv4 address",
                "write the NPU's address, e.g. 192.168.100.101",
            )
    if ips and len(ips) != device_count:
        c.add(
            path,
            f"{len(ips)} device IPs for {device_count} devices",
            "give one IP per device in the order of `devices`, or omit device_ips (discovery fills them)",
        )


def check_cluster(
    c: Checker, cluster: ClusterSettings, nodes: Sequence[NodeSpec], profile: Optional[HardwareProfile]
) -> None:
    """Rules across nodes and between cluster settings."""
    if cluster.launch_mode == "rank_table" and profile is not None and not profile.accelerator:
        c.add(
            "cluster.launch_mode",
            "rank_table launch needs Ascend NPUs; the cpu profile runs dynamic_cluster",
            "use `launch_mode: dynamic_cluster` or `auto`",
        )
    _unique(c, nodes, "host", lambda n: [host_key(n.host)], "every node needs its own address")
    _unique(
        c, nodes, "name", lambda n: [n.name.lower()] if n.name else [], "every node needs a distinct hostname"
    )
    _unique(c, nodes, "device_ips", lambda n: list(n.device_ips), "every NPU needs its own device IP")
    locals_ = [i for i, n in enumerate(nodes) if n.local]
    for i in locals_[1:]:
        c.add(
            f"nodes[{i}].local",
            f"nodes[{locals_[0]}] is already the local node",
            "mark only one node `local: true`",
        )
    if len(nodes) > 1:
        for i, n in enumerate(nodes):
            if is_loopback(n.host):
                c.add(
                    f"nodes[{i}].host",
                    f"{n.host!r} is a loopback address in a {len(nodes)}-node cluster",
                    "use the address the other nodes reach this node at",
                )
    counts = [n.device_count for n in nodes]
    devices_valid = not any(".devices" in p.field for p in c.problems)  # else counts mislead
    if devices_valid and len(set(counts)) > 1:
        common = Counter(counts).most_common(1)[0][0]
        for i, count in enumerate(counts):
            if count != common:
                c.add(
                    f"nodes[{i}].devices",
                    f"{count} devices, but most nodes use {common}",
                    "use the same number of devices on every node",
                )
    table_version = "1.2" if profile is not None and profile.rank_table_version == "1.2" else None
    for i, n in enumerate(nodes):
        if n.super_pod_id is not None and (table_version or cluster.rank_table_version) != "1.2":
            c.add(
                f"nodes[{i}].super_pod_id",
                "super_pod_id is used only by rank table version 1.2",
                'set `rank_table_version: "1.2"` or remove it',
            )


def _unique(c: Checker, nodes: Sequence[NodeSpec], key: str, values, fix: str) -> None:
    """Report every repeat of a value of ``key`` across nodes, naming the first occurrence."""
    first: dict[str, str] = {}
    for i, node in enumerate(nodes):
        for j, value in enumerate(values(node)):
            path = f"nodes[{i}].{key}" + (f"[{j}]" if key == "device_ips" else "")
            if value in first:
                c.add(path, f"{value!r} duplicates {first[value]}", fix)
            else:
                first[value] = path


def jump_chain(c: Checker, value: object, path: str) -> tuple[str, ...]:
    """``ssh.proxy_jump``: a ``-J`` style string (comma-separated hops, ``none``) or a list of hops;
    each hop ``[user@]host[:port]``. Returns the hops as written, first hop first."""
    if isinstance(value, str):
        items = [] if value.strip().lower() in ("", "none") else value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        c.add(
            path, f"expected a string or a list of jump hosts, got {value!r}", 'write e.g. "admin@login:22"'
        )
        return ()
    hops = []
    for i, item in enumerate(items):
        at = path if isinstance(value, str) else f"{path}[{i}]"
        if not isinstance(item, str):
            c.add(at, f"expected a jump host string, got {item!r}", "quote it: admin@login:22")
            continue
        try:
            hops.append(str(parse_jump(item)))
        except ValueError as exc:
            c.add(at, f"bad jump host: {exc}", "write [user@]host[:port], e.g. admin@login.example.com:2222")
    return tuple(hops)
