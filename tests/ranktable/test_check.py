"""One test per rank table rule: each broken table yields the named Problem, a valid one none."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.inventory.profiles import get_profile
from orchestrator.ranktable import (
    NodeDevices,
    RankDevice,
    RankServer,
    RankTable,
    build_rank_table,
    check_rank_table,
)
from tests.ranktable.util import A2, A800, a2_node, a800_node


def problems(table, profile=A2, **kw):
    return check_rank_table(table, profile, "t.json", **kw)


def messages(table, profile=A2, **kw):
    return [f"{p.field}: {p.message}" for p in problems(table, profile, **kw)]


def test_valid_tables_have_no_problems():
    assert problems(build_rank_table([a2_node("10.0.0.1", 1), a2_node("10.0.0.2", 2)])) == []
    assert problems(build_rank_table([a800_node("10.0.0.1", 1), a800_node("10.0.0.2", 2)]), A800) == []
    assert problems(build_rank_table([a800_node("10.0.0.1", 1, range(4, 8))]), A800) == []


def test_duplicate_server():
    table = build_rank_table([a2_node("10.0.0.1", 1), a2_node("10.0.0.1", 2)])
    found = problems(table)
    assert [p.field for p in found] == ["server_list[1].server_id"]
    assert "duplicates server_list[0]" in found[0].message and found[0].file == "t.json" and found[0].fix


def test_duplicate_device_ip_across_servers_and_within_one():
    table = build_rank_table([a2_node("10.0.0.1", 1), a2_node("10.0.0.2", 1)])
    found = messages(table)
    assert len(found) == 8
    assert (
        found[0]
        == "server_list[1].device[0].device_ip: 192.168.1.10 is also server_list[0].device[0] (10.0.0.1 device 0)"
    )
    same = NodeDevices("10.0.0.1", ((0, "192.168.1.10"), (1, "192.168.1.10")))
    assert messages(build_rank_table([same]), None) == [
        "server_list[0].device[1].device_ip: 192.168.1.10 is also server_list[0].device[0] (10.0.0.1 device 0)"
    ]


def test_unequal_device_counts():
    table = build_rank_table([a2_node("10.0.0.1", 1), a2_node("10.0.0.2", 2, range(4))])
    assert messages(table) == ["server_list: servers have unequal device counts (10.0.0.1: 8, 10.0.0.2: 4)"]


def test_a2_one_subnet_per_node():
    node = a2_node("10.0.0.1", 1)
    broken = replace(node, devices=node.devices[:7] + ((7, "192.168.9.17"),))
    found = messages(build_rank_table([broken]))
    assert (
        len(found) == 1
        and "devices [0, 1, 2, 3, 4, 5, 6, 7] of 10.0.0.1 must share one NIC subnet" in found[0]
    )
    assert "7: 192.168.9.0/24" in found[0]
    # a known wider netmask puts both in one subnet
    masks = {("10.0.0.1", d): "255.255.0.0" for d in range(8)}
    assert problems(build_rank_table([broken]), netmasks=masks) == []


def test_atlas_800_pairs_share_a_subnet_and_the_four_groups_differ():
    node = a800_node("10.0.0.1", 1)
    split = replace(node, devices=node.devices[:4] + ((4, "192.168.110.3"),) + node.devices[5:])
    found = messages(build_rank_table([split]), A800)
    assert len(found) == 1 and "devices [0, 4] of 10.0.0.1 must share one NIC subnet" in found[0]
    flat = a2_node("10.0.0.1", 1)  # all 8 in one subnet: wrong for Atlas 800
    found = messages(build_rank_table([flat]), A800)
    assert found == [
        "server_list[0].device: NIC groups [0, 4], [1, 5], [2, 6], [3, 7] of 10.0.0.1 share subnet 192.168.1.0/24"
    ]


def test_atlas_800_device_groups():
    assert messages(build_rank_table([a800_node("10.0.0.1", 1, (3, 4, 5, 6))]), A800) == [
        "server_list[0].device: devices [3, 4, 5, 6] of 10.0.0.1 break atlas-800-32g's device groups"
    ]
    assert problems(build_rank_table([a800_node("10.0.0.1", 1, (0, 1))]), A800) == []
    fix = problems(build_rank_table([a800_node("10.0.0.1", 1, (0, 1, 2, 3, 4, 5))]), A800)[0].fix
    assert fix == "use devices within [0,4) or [4,8) or all 8"
    assert problems(build_rank_table([a2_node("10.0.0.1", 1, (3, 4, 5, 6))])) == []  # A2: any subset


def test_device_id_out_of_range_and_listed_twice():
    node = NodeDevices("10.0.0.1", ((8, "192.168.1.18"), (0, "192.168.1.10")))
    assert messages(build_rank_table([node])) == [
        "server_list[0].device[1].device_id: device 8 is out of range for atlas-800t-a2-64g (0..7)"
    ]
    cpu = get_profile("cpu")
    assert (
        "out of range for cpu (0..1)" in messages(build_rank_table([a2_node("10.0.0.1", 1, (0, 2))]), cpu)[0]
    )
    twice = NodeDevices("10.0.0.1", ((0, "192.168.1.10"), (0, "192.168.1.11")))
    assert messages(build_rank_table([twice])) == [
        "server_list[0].device[1].device_id: device 0 is listed twice on 10.0.0.1"
    ]


def test_empty_and_invalid_device_ip():
    node = NodeDevices("10.0.0.1", ((0, ""), (1, "192.168.1.300")))
    assert messages(build_rank_table([node])) == [
        "server_list[0].device[0].device_ip: is empty for device 0 of 10.0.0.1",
        "server_list[0].device[1].device_ip: '192.168.1.300' is not an IPv4 address",
    ]
    # on the CPU profile device IPs are unused: empty is fine
    assert problems(build_rank_table([NodeDevices("h1", ((0, ""), (1, "")))]), get_profile("cpu")) == []


def test_loopback_server_id_the_stock_tool_defect():
    for sid in ("127.0.1.1", "127.0.0.1", "localhost"):
        found = problems(build_rank_table([a2_node(sid, 1)]))
        assert [p.message for p in found] == [f"{sid!r} is a loopback address"]
        assert "127.0.x.1" in found[0].fix


def _table(ranks, server_ids=("10.0.0.1", "10.0.0.2")) -> RankTable:
    servers, it = [], iter(ranks)
    for k, sid in enumerate(server_ids):
        devs = tuple(RankDevice(str(d), f"192.168.{k}.{d + 1}", str(next(it))) for d in range(2))
        servers.append(RankServer(sid, devs))
    return RankTable("1.0", tuple(servers))


def test_rank_ids_must_be_contiguous_unique_and_in_hccl_order():
    assert problems(_table([0, 1, 2, 3]), None) == []
    assert messages(_table([0, 1, 2, 5]), None) == ["rank_id: rank ids are not 0..3 each once (missing [3])"]
    assert messages(_table([0, 1, 1, 2]), None) == [
        "rank_id: rank ids are not 0..3 each once (duplicated [1]; missing [3])"
    ]
    wrong = messages(_table([2, 3, 0, 1]), None)  # argument-order merge: 10.0.0.2 got ranks 0-1
    assert wrong == [
        "rank_id: 10.0.0.1 device 0 has rank 2, HCCL order (server_id string order, then device id) gives 0"
    ]


def test_status_version_and_empty_tables():
    table = replace(build_rank_table([a2_node("10.0.0.1", 1)]), status="initializing")
    assert [p.field for p in problems(table)] == ["status"]
    assert [p.field for p in problems(RankTable("1.0", ()))] == ["server_list"]
    assert [p.field for p in problems(RankTable("1.0", (RankServer("10.0.0.1", ()),)))] == [
        "server_list[0].device"
    ]


def test_version_1_2_super_device_ids_and_pods():
    good = [
        NodeDevices("a", ((0, "10.1.0.1"),), "0", None, ("100",)),
        NodeDevices("b", ((0, "10.1.0.2"),), "0", None, ("101",)),
    ]
    assert problems(build_rank_table(good, "1.2"), None) == []
    missing = [replace(good[0], super_device_ids=()), replace(good[1], super_device_ids=("100",))]
    found = messages(build_rank_table(missing + [], "1.2"), None)
    assert found == ["server_list[0].device[0].super_device_id: missing (version 1.2 needs it per device)"]
    dup = [good[0], replace(good[1], super_device_ids=("100",))]
    assert messages(build_rank_table(dup, "1.2"), None) == [
        "server_list[1].device[0].super_device_id: 100 duplicates server_list[0].device[0]"
    ]
    table = build_rank_table(good, "1.2")
    stray = replace(table, super_pods=(replace(table.super_pods[0], server_ids=("a", "z")),))
    assert messages(stray, None) == [
        "super_pod_list: server b is in 0 SuperPoDs",
        "super_pod_list: server z is not in server_list",
    ]


def test_a3_devices_are_one_chip_or_whole_hiam_pairs():
    a3 = get_profile("atlas-900-a3-64g")

    def table(devices):
        node = NodeDevices("10.0.0.1", tuple((d, f"192.168.5.{d + 1}") for d in devices), "0", "10.0.0.1",
                           tuple(str(d) for d in devices))  # fmt: skip
        return build_rank_table([node], "1.2")

    assert problems(table(range(16)), a3) == [] and problems(table([5]), a3) == []
    assert problems(table([2, 3, 6, 7]), a3) == []
    (p,) = problems(table([0, 1, 2]), a3)
    assert p.field == "server_list[0].device" and "split HiAM pair(s) 2/3" in p.message
