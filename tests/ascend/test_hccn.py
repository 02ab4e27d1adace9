"""hccn_tool answers and /etc/hccn.conf, against the real captures and the spec's shapes."""

from __future__ import annotations

import pytest

from orchestrator.ascend import (
    AscendParseError,
    AscendToolBusy,
    AscendToolError,
    DeviceNic,
    parse_hccn_conf,
    parse_hccn_gateway,
    parse_hccn_ip,
    parse_hccn_link,
    parse_hccn_net_health,
    parse_hccn_netdetect,
    parse_hccn_ping,
)
from tests.fixtures.captures import CAPTURES

FIXTURES = CAPTURES


def sections(text: str) -> dict[str, str]:
    """Split a multi-command capture on its `# ...` / `/usr/...` / `lspci` command lines."""
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith(("# for", "/usr/", "lspci")):
            current = line.strip()
            found[current] = []
        elif current is not None:
            found[current].append(line)
    return {k: "\n".join(v) + "\n" for k, v in found.items()}


@pytest.fixture(scope="module")
def deepseek() -> dict[str, str]:
    return sections((FIXTURES / "hccn_tool_8x_910B3_deepseek_doc.txt").read_text())


def test_ip_of_each_device_from_the_a2_capture(deepseek):
    lines = deepseek["# for i in {0..7};do hccn_tool -i $i -ip -g; done"].splitlines()
    pairs = [parse_hccn_ip("\n".join(lines[i : i + 2])) for i in range(0, 16, 2)]
    assert pairs[0] == ("11.12.165.80", "255.255.255.0")
    assert [p[0] for p in pairs] == [f"11.12.165.{80 + i}" for i in range(8)]


def test_ping_link_health_netdetect_gateway_from_the_a2_capture(deepseek):
    ping = deepseek["# for i in {0..7}; do hccn_tool -i $i -ping -g address 11.12.165.80; done"]
    first = "\n".join(ping.splitlines()[:5])
    result = parse_hccn_ping(first)
    assert (result.sent, result.received, result.loss_percent, result.target) == (3, 3, 0.0, "11.12.165.80")
    assert result.times_ms == (0.114, 0.067, 0.063) and result.ok
    assert parse_hccn_link(deepseek["# for i in {0..7}; do hccn_tool -i $i -link -g ; done"]) == "UP"
    assert (
        parse_hccn_net_health(deepseek["# for i in {0..7}; do hccn_tool -i $i -net_health -g ; done"])
        == "Success"
    )
    assert (
        parse_hccn_netdetect(deepseek["# for i in {0..7}; do hccn_tool -i $i -netdetect -g ; done"])
        == "11.12.165.1"
    )
    gateway = deepseek["# for i in {0..7}; do hccn_tool -i $i -gateway -g ; done"].splitlines()
    assert parse_hccn_gateway(gateway[3]) == ("11.12.165.1", "eth3")


def test_mindcluster_capture_health_ip_and_empty_answer():
    parts = sections((FIXTURES / "mindcluster_npu_info_before_910A.txt").read_text())
    assert (
        parse_hccn_net_health(parts["/usr/local/Ascend/driver/tools/hccn_tool -i 0 -net_health -g"])
        == "Socket failed"
    )
    assert parse_hccn_ip(parts["/usr/local/Ascend/driver/tools/hccn_tool -i 1 -ip -g"]) == (
        "192.161.201.10",
        "255.255.255.0",
    )
    with pytest.raises(AscendParseError, match="empty output"):
        parse_hccn_ip(parts["/usr/local/Ascend/driver/tools/hccn_tool -i 2 -ip -g"])


def test_hccn_conf_from_the_a2_capture_skips_the_ellipsis():
    conf = parse_hccn_conf((FIXTURES / "hccn.conf_8npu_A2_example.txt").read_text())
    assert sorted(conf) == [0, 7]
    assert conf[0] == DeviceNic("29.1.137.205", "255.255.0.0", "29.1.0.1", "29.1.0.1", "1")
    assert conf[7].address == "29.1.170.143"


def test_ping_with_lost_packets():
    text = (
        "device 3 PING 192.168.1.9\nrecv seq=0,time=0.101000ms\nrecv time out seq=1\n"
        "recv seq=2,time=0.090000ms\n3 packets transmitted, 2 received, 33.33% packet loss\n"
    )
    result = parse_hccn_ping(text)
    assert (result.sent, result.received, result.loss_percent) == (3, 2, 33.33)
    assert result.timeouts == (1,) and result.times_ms == (0.101, 0.09) and not result.ok


def test_link_down_and_new_netdetect_spelling():
    assert parse_hccn_link("link status: DOWN\n") == "DOWN"
    assert parse_hccn_netdetect("netdetect addr: 10.0.0.254\n") == "10.0.0.254"
    assert parse_hccn_net_health("net health status: Receive timeout  \n") == "Receive timeout"
    assert parse_hccn_gateway("default gateway:10.1.0.1\n") == ("10.1.0.1", None)


def test_tool_errors_raise_with_the_tools_message():
    with pytest.raises(AscendToolError, match="no ip was preset"):
        parse_hccn_ip("Get ipconf failed, because no ip was preset there!\n")
    with pytest.raises(AscendToolBusy, match="busy"):
        parse_hccn_link("hccn_tool is busy, please try again\n")
    with pytest.raises(AscendParseError, match="not an IPv4 address"):
        parse_hccn_ip("ipaddr:300.1.1.1\nnetmask:255.255.255.0\n")


def test_hccn_conf_full_and_bad_value():
    text = "# NPU NICs\naddress_1=10.0.1.5\nnetmask_1=255.255.255.0\naddress_0=10.0.0.5\ntls_enable_0=1\n\n"
    conf = parse_hccn_conf(text)
    assert list(conf) == [0, 1] and conf[0] == DeviceNic(address="10.0.0.5")
    assert conf[1].netmask == "255.255.255.0" and conf[1].gateway is None
    with pytest.raises(AscendParseError, match="line 2: address_4 is not an IPv4 address"):
        parse_hccn_conf("netmask_4=255.255.255.0\naddress_4=10.0.0\n")
