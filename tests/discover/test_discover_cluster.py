"""Discovery over real SSH against simulated nodes with the fake Ascend tools, faults included."""

from __future__ import annotations

import dataclasses
import json

import pytest

from orchestrator.discover import DiffKind, apply_discovery, discover
from orchestrator.inventory import load_inventory

pytestmark = pytest.mark.cluster


def test_healthy_cluster_matches_its_inventory(sim_cluster):
    inv = load_inventory(sim_cluster.inventory)
    found = discover(inv)
    assert found.failures == () and found.differences == ()
    for spec, node in zip(inv.nodes, found.nodes):
        assert node.hostname == spec.name and node.device_ids == spec.devices
        assert tuple(d.ip for d in node.devices) == spec.device_ips
        assert {(d.link, d.net_health, d.ip_source) for d in node.devices} == {("UP", "Success", "hccn_tool")}
    blank = dataclasses.replace(inv, nodes=tuple(dataclasses.replace(n, device_ips=()) for n in inv.nodes))
    assert apply_discovery(blank, found) == inv


def test_faults_are_reported_as_typed_differences(faulty_inventory):
    inv = faulty_inventory
    n1, n2 = (n.host for n in inv.nodes)
    found = discover(inv)
    kinds = {(d.host, d.kind, d.device) for d in found.differences}
    assert kinds == {
        (n1, DiffKind.BUSY_NPU, 1),
        (n1, DiffKind.DUPLICATE_DEVICE_IP, 0),
        (n2, DiffKind.DUPLICATE_DEVICE_IP, 0),
        (n2, DiffKind.LINK_DOWN, 1),
        (n2, DiffKind.NET_HEALTH, 1),
    }
    busy = found.node(n1).device(1).processes
    assert [(p.pid, p.name) for p in busy] == [(4242, "python")]


def test_wrong_expectations_and_an_unreachable_node(faulty_inventory):
    inv = faulty_inventory
    n1, n2 = inv.nodes
    renamed = dataclasses.replace(n1, name="elsewhere", device_ips=("192.168.101.10", "10.1.1.1"))
    ghost = dataclasses.replace(
        n2, host=n2.host.rsplit(".", 1)[0] + ".250", ssh=dataclasses.replace(n2.ssh, connect_timeout=1)
    )
    found = discover(dataclasses.replace(inv, nodes=(renamed, ghost)))
    kinds = [(d.kind, d.device) for d in found.differences]
    assert (DiffKind.HOSTNAME, None) in kinds and (DiffKind.DEVICE_IP, 1) in kinds
    assert found.failures[0][0] == ghost.host and (DiffKind.UNREACHABLE, None) in kinds


def test_hccn_conf_fallback_when_hccn_tool_is_gone(faulty_sim, faulty_inventory):
    inv = faulty_inventory
    node = faulty_sim.nodes[1]
    tool = "/usr/local/Ascend/driver/tools/hccn_tool"  # where real nodes keep it (not on PATH)
    assert faulty_sim.exec(node.hostname, ["mv", tool, f"{tool}.away"]).returncode == 0
    try:
        found = discover(inv).node(node.host)
    finally:
        faulty_sim.exec(node.hostname, ["mv", f"{tool}.away", tool])
    assert found.hccn_tool is None
    assert [(d.ip, d.ip_source, d.link) for d in found.devices] == [
        ("192.168.101.10", "hccn.conf", None),
        ("192.168.102.11", "hccn.conf", None),
    ]


def test_discover_command_prints_differences_and_fails(faulty_inventory_file, capsys):
    from orchestrator.cli.main import main

    assert main(["discover", str(faulty_inventory_file), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert not data["ok"] and len(data["nodes"]) == 2
    assert {d["kind"] for d in data["differences"]} == {
        "busy_npu",
        "duplicate_device_ip",
        "link_down",
        "net_health",
    }
    assert main(["discover", str(faulty_inventory_file)]) == 1
    out = capsys.readouterr().out
    assert "192.168.102.11" in out and "link_down" in out
