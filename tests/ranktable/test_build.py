"""Building rank tables: HCCL's rank order, version 1.0 and 1.2 from the same code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.ranktable import (
    NodeDevices,
    build_rank_table,
    node_rank_table,
    rank_table_json,
    table_nodes,
)
from tests.ranktable.util import a2_node

GOLDEN = Path(__file__).parent / "data" / "a2_2node.json"


def test_ranks_follow_string_order_of_server_id_not_numeric_order():
    table = build_rank_table([a2_node("10.0.0.9", 1), a2_node("10.0.0.10", 2)])
    assert [s.server_id for s in table.servers] == ["10.0.0.10", "10.0.0.9"]  # "1" < "9"
    assert table.ranks_of("10.0.0.10") == tuple(range(8))
    assert table.first_rank("10.0.0.9") == 8 and table.world_size == 16 and table.server_count == 2


def test_devices_ordered_by_physical_id_within_a_server():
    node = NodeDevices("10.0.0.1", ((6, "192.168.1.16"), (4, "192.168.1.14"), (5, "192.168.1.15")))
    table = build_rank_table([node])
    assert [(d.device_id, d.rank_id) for d in table.servers[0].devices] == [
        ("4", "0"),
        ("5", "1"),
        ("6", "2"),
    ]
    assert table.server("10.0.0.1").devices[2].device_ip == "192.168.1.16"


def test_golden_two_node_a2_table():
    table = build_rank_table([a2_node("10.0.0.2", 2), a2_node("10.0.0.1", 1)])
    assert rank_table_json(table) == GOLDEN.read_text()


def test_golden_is_the_hccl_format_with_every_value_a_string():
    raw = json.loads(GOLDEN.read_text())
    assert list(raw) == ["version", "server_count", "status", "server_list"]
    assert (raw["version"], raw["server_count"], raw["status"]) == ("1.0", "2", "completed")
    first = raw["server_list"][0]
    assert list(first) == ["server_id", "host_nic_ip", "device"] and first["host_nic_ip"] == "reserve"
    assert first["device"][0] == {"device_id": "0", "device_ip": "192.168.1.10", "rank_id": "0"}
    assert raw["server_list"][1]["device"][7]["rank_id"] == "15"

    def strings(v):
        return (
            all(strings(x) for x in v.values())
            if isinstance(v, dict)
            else (all(strings(x) for x in v) if isinstance(v, list) else isinstance(v, str))
        )

    assert strings(raw)


def test_version_1_2_adds_super_pods_super_device_ids_and_host_ip():
    nodes = [
        NodeDevices("node-b", ((0, "10.2.0.1"), (1, "10.2.0.2")), "1", "172.16.0.2", ("2000", "2001")),
        NodeDevices("node-a", ((1, "10.1.0.2"), (0, "10.1.0.1")), "0", "172.16.0.1", ("1001", "1000")),
        NodeDevices("node-c", ((0, "10.3.0.1"), (1, "10.3.0.2")), "1", None, ("3000", "3001")),
    ]
    table = build_rank_table(nodes, "1.2")
    raw = json.loads(rank_table_json(table))
    assert list(raw) == ["version", "server_count", "status", "server_list", "super_pod_list"]
    a = raw["server_list"][0]
    assert list(a) == ["server_id", "host_ip", "device"] and a["host_ip"] == "172.16.0.1"
    assert a["device"][0] == {
        "device_id": "0",
        "device_ip": "10.1.0.1",
        "super_device_id": "1000",
        "rank_id": "0",
    }
    assert "host_ip" not in raw["server_list"][2]
    assert raw["super_pod_list"] == [
        {"super_pod_id": "0", "server_list": [{"server_id": "node-a"}]},
        {"super_pod_id": "1", "server_list": [{"server_id": "node-b"}, {"server_id": "node-c"}]},
    ]
    assert table.super_pod_of("node-c") == "1"


def test_version_1_2_without_super_pod_ids_uses_pod_zero():
    table = build_rank_table([a2_node("10.0.0.1", 1, range(2))], "1.2")
    assert [(p.super_pod_id, p.server_ids) for p in table.super_pods] == [("0", ("10.0.0.1",))]
    assert table.servers[0].devices[0].super_device_id is None


def test_unknown_version_and_mismatched_super_device_ids_are_refused():
    with pytest.raises(ValueError, match="version must be one of 1.0, 1.2"):
        build_rank_table([a2_node("10.0.0.1", 1)], "2.0")
    with pytest.raises(ValueError, match="1 super_device_ids for 2 devices"):
        build_rank_table(
            [NodeDevices("n", ((0, "10.0.0.1"), (1, "10.0.0.2")), super_device_ids=("5",))], "1.2"
        )


def test_node_table_is_local_and_table_nodes_invert_build():
    nodes = [a2_node("10.0.0.9", 1, range(4)), a2_node("10.0.0.10", 2, range(4))]
    table = build_rank_table(nodes)
    own = node_rank_table(table, "10.0.0.9")
    assert own.server_count == 1 and own.ranks_of("10.0.0.9") == (0, 1, 2, 3)
    assert sorted(table_nodes(table), key=lambda n: n.server_id) == sorted(nodes, key=lambda n: n.server_id)
    with pytest.raises(KeyError, match="'10.0.0.8' is not in the rank table"):
        node_rank_table(table, "10.0.0.8")
