"""The fake tools' printers reproduce the real captures byte for byte (fast, no cluster)."""

from __future__ import annotations

import re

import pytest

from orchestrator.sim import hardware as hw
from orchestrator.sim.fake_tools import printers
from tests.fixtures.captures import CAPTURES

ROW1 = re.compile(r"^\| (\d+)\s+(\S+)\s+\| (\S+)\s+\| ([\d.]+)\s+(\d+)\s+(\d+)\s*/ (\d+)\s+\|$")
ROW2 = re.compile(r"^\| 0\s+\| (\S+)\s+\| (\d+)\s+(\d+)\s*/ (\d+)\s+(\d+)\s*/ (\d+)\s+\|$")
PROC = re.compile(r"^\| (\d+)\s+0\s+\| (\d+)\s+\| (.{24}) \| (\d+)\s+\|$")
CAPTURES_98 = [
    "npu-smi_info_910B2_25.2.0_8npu_procs.txt",
    "npu-smi_info_910B3_25.2.0_8npu_idle_plus_one_unnamed.txt",
    "npu-smi_info_910PremiumA_23.0.rc2_8npu_procs.txt",
]


def _hardware_of_capture(text: str) -> dict:
    """Read a capture's values into the hardware schema (the test's own small parser)."""
    npus: dict[int, dict] = {}
    last = None
    for line in text.splitlines():
        if m := ROW1.match(line):
            last = int(m[1])
            npus[last] = {"id": last, "ip": f"10.0.0.{last + 1}", "chip_name": m[2], "health": m[3]}
            npus[last].update(
                power_w=float(m[4]), temp_c=int(m[5]), hugepages_used=int(m[6]), hugepages_total=int(m[7])
            )
        elif (m := ROW2.match(line)) and last is not None:
            keys = (
                "bus_id",
                "aicore_pct",
                "memory_used_mb",
                "memory_total_mb",
                "hbm_used_mb",
                "hbm_total_mb",
            )
            npus[last].update(zip(keys, [m[1], *map(int, m.groups()[1:])]))
            last = None
        elif m := PROC.match(line):
            npus[int(m[1])].setdefault("processes", []).append(
                {"pid": int(m[2]), "name": m[3].strip(), "memory_mb": int(m[4])}
            )
    return {"nodes": [{"name": "n1", "npus": [npus[k] for k in sorted(npus)]}]}


@pytest.mark.parametrize("capture", CAPTURES_98)
def test_npu_smi_info_reproduces_real_capture(capture: str):
    text = (CAPTURES / capture).read_text()
    version = text.splitlines()[1].split()[2]
    node = hw.parse(_hardware_of_capture(text)).to_dict()["nodes"][0]
    assert len(node["npus"]) == 8
    assert printers.npu_smi_info(node, version) == text


def test_npu_smi_info_default_node_is_98_columns_with_live_process():
    node = hw.default_hardware(["a"], devices=4).to_dict()["nodes"][0]
    live = [{"npu": 3, "pid": 77, "name": "python", "memory_mb": 1000, "live": True}]
    out = printers.npu_smi_info(node, "25.2.0", live)
    assert {len(line) for line in out.splitlines()} == {98}
    assert (
        "| 3       0                 | 77            | python                   | 1000                    |"
        in out
    )
    assert "4400 / 65536" in out  # live memory counts into HBM usage
    assert out.count("No running processes found in NPU") == 3


def test_list_and_map_match_captures():
    base = CAPTURES
    node8 = hw.default_hardware(["a"], devices=8).to_dict()["nodes"][0]
    assert printers.npu_smi_list(node8) == (base / "npu-smi_info_-l_8npu_tabs.txt").read_text()
    node2 = hw.default_hardware(["a"], devices=2).to_dict()["nodes"][0]
    assert (
        printers.npu_smi_map(node2)
        == (base / "npu-smi_info_-m_910B3_first2npu_verbatim_tabs.txt").read_text()
    )
    node2["npus"][0]["chip_name"] = "910A"
    assert "Mcu" not in printers.npu_smi_map(node2).splitlines()[1]


def test_hccn_answers_have_the_documented_shapes():
    doc = (CAPTURES / "hccn_tool_8x_910B3_deepseek_doc.txt").read_text().splitlines()
    npu = {"id": 0, "ip": "11.12.165.80", "netmask": "255.255.255.0", "gateway": "11.12.165.1"}
    npu.update(netdetect="11.12.165.1", link="UP", net_health="Success")
    assert printers.hccn_ip(npu).splitlines() == doc[1:3]
    for text in (printers.hccn_link(npu), printers.hccn_net_health(npu), printers.hccn_netdetect(npu)):
        assert text.rstrip("\n") in doc
    assert printers.hccn_gateway(npu).rstrip("\n") == "default gateway:11.12.165.1, Iface:eth0"
    ok = printers.hccn_ping(npu, "11.12.165.80", True).splitlines()
    assert ok[0] == doc[18] and ok[-1] == doc[22] and re.match(r"recv seq=1,time=[\d.]+ms$", ok[2])
    lost = printers.hccn_ping(npu, "11.12.165.99", False).splitlines()
    assert (
        lost[1] == "recv time out seq=0"
        and lost[-1] == "3 packets transmitted, 0 received, 100.00% packet loss"
    )


def test_hccn_conf_has_five_keys_per_device():
    example = (CAPTURES / "hccn.conf_8npu_A2_example.txt").read_text().splitlines()
    node = hw.default_hardware(["a"], devices=8).to_dict()["nodes"][0]
    conf = printers.hccn_conf(node).splitlines()
    assert len(conf) == 40
    shape = [re.sub(r"=.*", "", line) for line in conf[:5]]
    assert shape == [re.sub(r"=.*", "", line) for line in example[:5]]
    assert conf[35] == "address_7=192.168.101.17" and conf[39] == "send_arp_status_7=1"


def test_reachability_follows_links_and_duplicates():
    cluster = hw.default_hardware(["a", "b"], devices=2).to_dict()
    cluster["nodes"][1]["npus"][0]["link"] = "DOWN"
    up = printers.reachable_ips(cluster)
    assert up["192.168.101.10"] and not up["192.168.102.10"] and "10.9.9.9" not in up
    cluster["nodes"][0]["npus"][1]["ip"] = "192.168.102.10"  # a duplicate that is UP
    assert printers.reachable_ips(cluster)["192.168.102.10"]


def test_atlas_a3_layout_reads_as_two_chips_per_card():
    from orchestrator.ascend.npu_smi import parse_npu_smi_info
    from orchestrator.ascend.npu_smi_queries import (
        parse_npu_smi_list,
        parse_npu_smi_mapping,
        parse_npu_smi_spod_info,
    )

    node = hw.node_dict(hw.default_hardware(["a", "b"], kind="atlas-900-a3"), 1)
    live = [{"npu": 5, "pid": 77, "name": "python", "memory_mb": 1000, "live": True}]
    out = printers.npu_smi_info(node, "25.3.rc1", live)
    assert {len(line) for line in out.splitlines()} == {98}
    assert (
        "| Chip  Phy-ID              | Bus-Id" in out
        and "| 0     Ascend910           | OK            | -   " in out
    )
    info = parse_npu_smi_info(out)
    assert [n.npu_id for n in info.npus] == list(range(8))
    assert [(c.chip_id, c.phy_id) for c in info.npus[2].chips] == [(0, 4), (1, 5)]
    assert info.npus[2].chips[1].power_w is None
    assert [(p.npu_id, p.chip_id, p.pid) for p in info.processes] == [(2, 1, 77)]
    assert parse_npu_smi_list(printers.npu_smi_list(node)) == tuple(range(8))
    assert [(m.npu_id, m.chip_id, m.logic_id) for m in parse_npu_smi_mapping(printers.npu_smi_map(node))[:3]] == [
        (0, 0, 0), (0, 1, 1), (1, 0, 2)]  # fmt: skip
    spod = parse_npu_smi_spod_info(printers.npu_smi_spod_info(node, 3, 1, 7))
    assert (spod.super_pod_id, spod.server_index, spod.sdid) == (7, 1, 16 + 7)
    assert printers.npu_smi_spod_info(hw.node_dict(hw.default_hardware(["a"]), 0), 0, 0, 0) is None
