"""Text printers of the fake `npu-smi` and `hccn_tool`: pure functions of one node's hardware.

Stdlib only (they run on simulated nodes under any Python 3.9+). Input is the JSON form of
:class:`orchestrator.sim.hardware.NodeHardware` (``{"name": ..., "npus": [{...}, ...]}``); the output
reproduces the real tools' bytes: the 98-column ``npu-smi info`` layout of driver 23.0.rc2..25.x, the
tab-indented ``-l``/``-m`` listings and the one-line ``hccn_tool`` answers
(see ``docs/ascend-tool-outputs.md`` and the captures in ``tests/fixtures/ascend_captures/``).
"""

# ruff: noqa: UP031 (printf formats on purpose: they mirror the driver's C formats)
from __future__ import annotations

from typing import Any, Dict, List, Optional

Npu = Dict[str, Any]

_DASH = "+" + "-" * 27 + "+" + "-" * 15 + "+" + "-" * 52 + "+"
_EQ = "+" + "=" * 27 + "+" + "=" * 15 + "+" + "=" * 52 + "+"
_HEAD = (
    "| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|",
    "| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |",
)
_PROC_HEAD = (
    "| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |"
)


def _card_rows(npu: Npu, extra_mb: int) -> List[str]:
    row1 = "| %-5d %-20s| %-13s | %-11.1f %-17d %-5d/ %-13d |" % (
        npu["id"],
        npu["chip_name"],
        npu["health"],
        npu["power_w"],
        npu["temp_c"],
        npu["hugepages_used"],
        npu["hugepages_total"],
    )
    row2 = "| %-26d| %-13s | %-11d %-5d/ %-10d %-5d/ %-13d |" % (
        0,
        npu["bus_id"],
        npu["aicore_pct"],
        npu["memory_used_mb"],
        npu["memory_total_mb"],
        min(npu["hbm_used_mb"] + extra_mb, npu["hbm_total_mb"]),
        npu["hbm_total_mb"],
    )
    return [row1, row2, _EQ]


def _a3_card_rows(npu: Npu, extra_mb: int) -> List[str]:
    """Atlas A3: one chip (``id`` = Phy-ID) of a two-chip card; the second chip prints no power."""
    card, chip = divmod(npu["id"], 2)
    power = "%-11.1f" % npu["power_w"] if chip == 0 else "%-11s" % "-"
    row1 = "| %-5d %-20s| %-13s | %s %-17d %-5d/ %-13d |" % (
        card,
        npu["chip_name"],
        npu["health"],
        power,
        npu["temp_c"],
        npu["hugepages_used"],
        npu["hugepages_total"],
    )
    row2 = "| %-5d %-20d| %-13s | %-11d %-5d/ %-10d %-5d/ %-13d |" % (
        chip,
        npu["id"],
        npu["bus_id"],
        npu["aicore_pct"],
        npu["memory_used_mb"],
        npu["memory_total_mb"],
        min(npu["hbm_used_mb"] + extra_mb, npu["hbm_total_mb"]),
        npu["hbm_total_mb"],
    )
    return [row1, row2, "+" + "-" * 96 + "+" if chip == 0 else _EQ]


def npu_smi_info(node: Dict[str, Any], version: str, extra: Optional[List[Npu]] = None) -> str:
    """`npu-smi info`: cards, then the process table (hardware processes plus ``extra`` live ones).
    A node with ``chips_per_npu`` 2 (Atlas A3) prints the A3 layout: card ``id // 2``, chip ``id % 2``."""
    a3 = node.get("chips_per_npu", 1) == 2
    procs: Dict[int, List[Npu]] = {n["id"]: list(n.get("processes", [])) for n in node["npus"]}
    for p in extra or []:
        procs.setdefault(p["npu"], []).append(p)
    lines = ["+" + "-" * 96 + "+", "| npu-smi %-24s Version: %-52s |" % (version, version), _DASH]
    head = (_HEAD[0], _HEAD[1].replace("| Chip" + " " * 22, "| Chip  Phy-ID" + " " * 14)) if a3 else _HEAD
    lines += [*head, _EQ]
    for npu in node["npus"]:
        extra_mb = sum(p["memory_mb"] for p in procs[npu["id"]] if p.get("live"))
        lines += _a3_card_rows(npu, extra_mb) if a3 else _card_rows(npu, extra_mb)
    lines += [_DASH, _PROC_HEAD, _EQ]
    cards: Dict[int, List[Npu]] = {}
    for npu in node["npus"]:
        cards.setdefault(npu["id"] // 2 if a3 else npu["id"], []).append(npu)
    for card, chips in cards.items():
        held = [(npu["id"] % 2 if a3 else 0, p) for npu in chips for p in procs[npu["id"]]]
        for chip, p in held:
            lines.append(
                "| %-7d %-18d| %-13d | %-24s | %-23d |" % (card, chip, p["pid"], p["name"], p["memory_mb"])
            )
        if not held:
            lines.append(("| No running processes found in NPU %-7d" % card).ljust(97) + "|")
        lines.append(_EQ)
    return "\n".join(lines) + "\n"


def npu_smi_list(node: Dict[str, Any]) -> str:
    """`npu-smi info -l`: tab-indented ``Key : value`` blocks, one per card."""
    per = node.get("chips_per_npu", 1)
    cards = sorted({npu["id"] // per for npu in node["npus"]})
    out = "\t%-30s : %d\n\n" % ("Total Count", len(cards))
    for card in cards:
        out += "\t%-30s : %d\n\t%-30s : %d\n\n" % ("NPU ID", card, "Chip Count", per)
    return out


def npu_smi_map(node: Dict[str, Any]) -> str:
    """`npu-smi info -m`: NPU id, chip id, logic id (the runtime index), name; 910B cards add an Mcu row,
    A3 cards list both chips."""
    per = node.get("chips_per_npu", 1)
    out = "\t%-31s%-31s%-31s%-30s\n" % ("NPU ID", "Chip ID", "Chip Logic ID", "Chip Name")
    for logic, npu in enumerate(node["npus"]):
        card, chip = divmod(npu["id"], per)
        name = npu["chip_name"] if npu["chip_name"].startswith("Ascend") else "Ascend " + npu["chip_name"]
        out += "\t%-31d%-31d%-31d%s\n" % (card, chip, logic, name)
        if npu["chip_name"].startswith("910B"):
            out += "\t%-31d%-31d%-31s%-30s\n" % (npu["id"], 1, "-", "Mcu")
    return out


def npu_smi_spod_info(node: Dict[str, Any], card: int, chip: int, super_pod_id: int) -> Optional[str]:
    """`npu-smi info -t spod-info -i N -c C` on an A3 node (None elsewhere: unsupported there):
    SDID (the chip's super device id, unique in the SuperPoD), pod size, pod id, server index."""
    if node.get("chips_per_npu", 1) != 2:
        return None
    index = int(node.get("server_index", 0))
    sdid = index * 16 + card * 2 + chip
    rows = [("SDID", sdid), ("Super Pod Size", 0), ("Super Pod ID", super_pod_id), ("Server Index", index)]
    return "".join("\t%-30s : %d\n" % row for row in rows)


def npu_smi_version(version: str) -> str:
    return "npu-smi version: %s\n" % version


def hccn_ip(npu: Npu) -> str:
    return "ipaddr:%s\nnetmask:%s\n" % (npu["ip"], npu["netmask"])


def hccn_link(npu: Npu) -> str:
    return "link status: %s\n" % npu["link"]


def hccn_net_health(npu: Npu) -> str:
    return "net health status: %s\n" % npu["net_health"]


def hccn_netdetect(npu: Npu) -> str:
    return "netdetect address: %s\n" % npu["netdetect"]


def hccn_gateway(npu: Npu) -> str:
    return "default gateway:%s, Iface:eth%d\n" % (npu["gateway"], npu["id"])


def hccn_ping(npu: Npu, target: str, reachable: bool, count: int = 3) -> str:
    """Ping from one NPU NIC; replies carry fixed, plausible round-trip times."""
    out = "device %d PING %s\n" % (npu["id"], target)
    for seq in range(count):
        out += (
            "recv seq=%d,time=%.6fms\n" % (seq, 0.06 + 0.01 * seq)
            if reachable
            else "recv time out seq=%d\n" % seq
        )
    got = count if reachable else 0
    loss = 100.0 * (count - got) / count
    return out + "%d packets transmitted, %d received, %.2f%% packet loss\n" % (count, got, loss)


def hccn_conf(node: Dict[str, Any]) -> str:
    """/etc/hccn.conf: five ``key_N=value`` lines per device N (physical id)."""
    out = ""
    for npu in node["npus"]:
        n = npu["id"]
        out += "address_%d=%s\nnetmask_%d=%s\n" % (n, npu["ip"], n, npu["netmask"])
        out += "netdetect_%d=%s\ngateway_%d=%s\nsend_arp_status_%d=1\n" % (
            n,
            npu["netdetect"],
            n,
            npu["gateway"],
            n,
        )
    return out


def reachable_ips(cluster: Dict[str, Any]) -> Dict[str, bool]:
    """Every device IP in the cluster -> whether its link is UP (a duplicate IP is UP if any copy is)."""
    up: Dict[str, bool] = {}
    for node in cluster["nodes"]:
        for npu in node["npus"]:
            up[npu["ip"]] = up.get(npu["ip"], False) or npu["link"] == "UP"
    return up
