"""Discovery against recorded node outputs: NPUs, device IPs (with the hccn.conf fallback), NIC state,
and the typed differences from the inventory."""

from __future__ import annotations

import dataclasses

from orchestrator.discover import DiffKind, apply_discovery, discover
from orchestrator.discover.model import Discovery
from tests.discover.conftest import inventory
from tests.fixtures.captures import capture
from tests.transport.fake import FakeNode

B2_PROCS = "npu-smi_info_910B2_25.2.0_8npu_procs.txt"
B3_IDLE = "npu-smi_info_910B3_25.2.0_8npu_idle_plus_one_unnamed.txt"
A_WARN = "npu-smi_info_910A_23.0.rc1.b070_4npu_warning_testfixture.txt"
EIGHT = "[0, 1, 2, 3, 4, 5, 6, 7]"


def _deepseek_ips() -> dict:
    """hccn_tool -ip -g answers of the real 8x 910B3 capture, per device."""
    lines = [
        line
        for line in capture("hccn_tool_8x_910B3_deepseek_doc.txt").splitlines()
        if line[:2] in ("ip", "ne")
    ]
    return {(d, "ip"): (0, "\n".join(lines[2 * d : 2 * d + 2]) + "\n") for d in range(8)}


def _kinds(found: Discovery, host=None) -> list:
    return [(d.kind, d.device) for d in found.differences if host is None or d.host == host]


def test_idle_node_matches_inventory():
    inv = inventory(nodes=f"  - host: 10.0.0.1\n    name: a1\n    devices: {EIGHT}\n")
    node = FakeNode("10.0.0.1", "a1", capture(B3_IDLE), hccn=_deepseek_ips())
    found = discover(inv, transports={"10.0.0.1": node})
    n = found.node("10.0.0.1")
    assert n.hostname == "a1" and n.device_ids == tuple(range(8))
    assert [d.ip for d in n.devices] == [f"11.12.165.{80 + d}" for d in range(8)]
    assert {d.ip_source for d in n.devices} == {"hccn_tool"} and n.devices[0].name == "910B3"
    assert [p.pid for p in n.device(2).processes] == [1333928]  # the unnamed process
    assert _kinds(found) == [(DiffKind.BUSY_NPU, 2)] and found.ok  # busy is a warning
    assert node.closed  # discover's own pool closed the connection


def test_hccn_tool_failure_falls_back_to_hccn_conf():
    conf = "\n".join(f"address_{d}=29.1.137.{200 + d}\nnetmask_{d}=255.255.0.0" for d in range(8))
    hccn = {(d, "ip"): (1, "Get ipconf failed, because no ip was preset there!\n") for d in (0, 5)}
    node = FakeNode("h", "a1", capture(B3_IDLE), hccn=hccn, hccn_conf=conf)
    found = discover(inventory(nodes=f"  - host: h\n    devices: {EIGHT}\n"), transports={"h": node})
    devs = found.node("h").devices
    assert (devs[0].ip, devs[0].ip_source) == ("29.1.137.200", "hccn.conf")
    assert (devs[5].ip, devs[5].ip_source) == ("29.1.137.205", "hccn.conf")
    assert devs[1].ip_source == "hccn_tool"
    assert any("no ip was preset" in note for note in found.node("h").notes)


def test_no_ip_anywhere_is_an_error():
    hccn = {(0, "ip"): (1, "Get ipconf failed, because no ip was preset there!\n")}
    found = discover(
        inventory(nodes="  - host: h\n    devices: [0, 1, 2, 3, 4, 5, 6, 7]\n"),
        transports={"h": FakeNode("h", "x", capture(B3_IDLE), hccn=hccn)},
    )
    assert (DiffKind.NO_DEVICE_IP, 0) in _kinds(found) and not found.ok


def test_broken_nic_unhealthy_npu_busy_and_hostname():
    hccn = {(3, "link"): (0, "link status: DOWN\n"), (4, "health"): (0, "net health status: Fault\n")}
    inv = inventory("atlas-800-32g", nodes="  - host: h\n    name: expected\n    devices: [0, 1, 2, 3]\n")
    found = discover(inv, transports={"h": FakeNode("h", "actual", capture(A_WARN), hccn=hccn)})
    kinds = _kinds(found)
    assert kinds[0] == (DiffKind.HOSTNAME, None)
    assert (DiffKind.LINK_DOWN, 3) in kinds and (DiffKind.UNHEALTHY_NPU, 1) in kinds
    assert (DiffKind.NET_HEALTH, 4) not in kinds  # NPU 4 is not used by this inventory
    warn = next(d for d in found.differences if d.kind == DiffKind.UNHEALTHY_NPU)
    assert warn.severity == "warning" and warn.found == "Warning"


def test_missing_device_and_different_ip():
    ips = ", ".join(f'"10.9.0.{d}"' for d in range(8)).replace("10.9.0.6", "10.9.9.6")
    inv = inventory(nodes=f"  - host: h\n    devices: {EIGHT}\n    device_ips: [{ips}]\n")
    text = capture(B2_PROCS)
    found = discover(inv, transports={"h": FakeNode("h", "x", text)})
    kinds = _kinds(found)
    assert (DiffKind.DEVICE_IP, 6) in kinds
    diff = next(d for d in found.differences if d.kind == DiffKind.DEVICE_IP)
    assert (diff.expected, diff.found) == ("10.9.9.6", "10.9.0.6")
    inv4 = inventory("atlas-800-32g", nodes="  - host: h\n    devices: [4, 5, 6, 7]\n")
    found4 = discover(inv4, transports={"h": FakeNode("h", "x", capture(A_WARN))})
    assert [k for k in _kinds(found4) if k[0] == DiffKind.MISSING_DEVICE] == [
        (DiffKind.MISSING_DEVICE, d) for d in (4, 5, 6, 7)
    ]


def test_duplicate_device_ip_and_hostname_across_nodes():
    dup = {(1, "ip"): (0, "ipaddr:10.9.0.0\nnetmask:255.255.255.0\n")}
    inv = inventory("cpu", nodes="  - host: a\n    devices: [0, 1]\n  - host: b\n    devices: [0, 1]\n")
    b = FakeNode("b", "same", capture(B3_IDLE), hccn=dup, subnet="10.9.1")
    found = discover(inv, transports={"a": FakeNode("a", "same", capture(B3_IDLE)), "b": b})
    dups = [d for d in found.differences if d.kind == DiffKind.DUPLICATE_DEVICE_IP]
    assert [(d.host, d.device) for d in dups] == [("a", 0), ("b", 1)]
    assert "also used by b NPU 1" in dups[0].message and dups[0].found == "10.9.0.0"
    names = [d.host for d in found.differences if d.kind == DiffKind.DUPLICATE_HOSTNAME]
    assert names == ["a", "b"] and not found.ok


def test_cpu_node_without_tools_reads_hostname_only():
    node = FakeNode("127.0.0.1", "vm")
    found = discover(
        inventory("cpu", nodes="  - host: 127.0.0.1\n    devices: [0, 1]\n"), transports={"127.0.0.1": node}
    )
    assert found.node("127.0.0.1").hostname == "vm" and not found.node("127.0.0.1").has_npu_tools
    assert found.differences == () and len(node.calls) == 1  # one round trip, nothing else asked


def test_accelerator_profile_without_npu_smi_is_an_error():
    inv = inventory(nodes="  - host: h\n    devices: [0]\n")
    found = discover(inv, transports={"h": FakeNode("h", "x")})
    assert _kinds(found) == [(DiffKind.NO_NPU_TOOLS, None)]


def test_npu_smi_error_output_is_reported():
    text = "dcmi model initialized failed, because the device is used. ret is -8020\n"
    found = discover(
        inventory(nodes="  - host: h\n    devices: [0]\n"), transports={"h": FakeNode("h", "x", text)}
    )
    assert _kinds(found) == [(DiffKind.NPU_SMI_FAILED, None)]
    assert "device is used" in found.differences[0].message


def test_unreachable_node_is_listed_not_raised():
    from orchestrator.errors import TransportError
    from orchestrator.transport import TransportPool

    def refuse(node):
        raise TransportError(f"root@{node.host}:22: connection refused")

    inv = inventory("cpu", nodes="  - host: a\n    devices: [0]\n  - host: b\n    devices: [0]\n")
    pool = TransportPool({"a": FakeNode("a", "na")}, factory=refuse)
    found = discover(inv, pool=pool)
    assert found.failures == (("b", "root@b:22: connection refused"),)
    assert _kinds(found) == [(DiffKind.UNREACHABLE, None)] and not found.ok


def test_apply_fills_device_ips_and_devices():
    nodes = "  - host: a\n    devices: [0, 1]\n  - host: b\n    devices: [6, 7]\n  - host: c\n    devices: [0, 1]\n"
    inv = inventory(nodes=nodes)
    a, b = FakeNode("a", "a", capture(B3_IDLE)), FakeNode("b", "b", capture(B3_IDLE), subnet="10.8.0")
    found = discover(inv, transports={"a": a, "b": b, "c": FakeNode("c", "c")})
    applied = apply_discovery(inv, found)
    assert applied.node("a").devices == (0, 1) and applied.node("a").device_ips == ("10.9.0.0", "10.9.0.1")
    assert applied.node("b").device_ips == ("10.8.0.6", "10.8.0.7")
    assert applied.node("c") == inv.node("c")  # no NPU tools: unchanged
    assert inv.node("a").device_ips == ()  # pure: the input is untouched
    no_devices = dataclasses.replace(inv, nodes=(dataclasses.replace(inv.node("a"), devices=()),))
    filled = apply_discovery(
        no_devices, discover(no_devices, transports={"a": FakeNode("a", "a", capture(B3_IDLE))})
    )
    assert filled.nodes[0].devices == tuple(range(8))
