"""Property tests: any valid set of nodes gives a valid table in HCCL's order, whatever the input
order; per-node tables merge back to the whole; JSON round-trips byte for byte."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.ranktable import (
    NodeDevices,
    build_rank_table,
    check_rank_table,
    merge_rank_tables,
    node_rank_table,
    parse_rank_table,
    rank_table_json,
)
from tests.ranktable.util import A2, A800

FAST = settings(max_examples=60, deadline=None)

server_ids = st.tuples(
    st.integers(1, 223).filter(lambda a: a != 127),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(1, 254),
).map(lambda t: ".".join(map(str, t)))
A800_SETS = [tuple(range(a, b)) for a in range(8) for b in range(a + 1, 9) if b <= 4 or a >= 4] + [
    tuple(range(8))
]


def _device_ip(profile, node: int, dev: int) -> str:
    if profile is A2:  # one subnet per node
        return f"10.{node // 200}.{node % 200}.{dev + 1}"
    return f"192.168.{100 + dev % 4}.{2 * node + dev // 4 + 1}"  # Atlas 800: 0/4, 1/5, 2/6, 3/7


@st.composite
def clusters(draw, version: str = "1.0"):
    """(profile, nodes): unique servers, equal device counts, device sets and IPs that follow the plan."""
    profile = draw(st.sampled_from([A2, A800]))
    ids = draw(st.lists(server_ids, min_size=1, max_size=6, unique=True))
    if profile is A2:
        size = draw(st.integers(1, 8))
        choose = st.lists(st.integers(0, 7), min_size=size, max_size=size, unique=True)
    else:
        size = draw(st.sampled_from(sorted({len(s) for s in A800_SETS})))
        choose = st.sampled_from([s for s in A800_SETS if len(s) == size]).flatmap(st.permutations)
    nodes = []
    for k, sid in enumerate(ids):
        devs = draw(choose)
        sdids = tuple(str(1000 * k + d) for d in devs) if version == "1.2" else ()
        pod = str(k % 2) if version == "1.2" else None
        nodes.append(NodeDevices(sid, tuple((d, _device_ip(profile, k, d)) for d in devs), pod, None, sdids))
    return profile, nodes


def _shuffled(draw_perm, nodes):
    nodes = list(draw_perm(st.permutations(nodes)))
    return [
        NodeDevices(
            n.server_id,
            tuple(draw_perm(st.permutations(list(n.devices)))) if not n.super_device_ids else n.devices,
            n.super_pod_id,
            n.host_ip,
            n.super_device_ids,
        )
        for n in nodes
    ]


@FAST
@given(clusters())
def test_valid_nodes_give_a_valid_table_in_hccl_order(case):
    profile, nodes = case
    table = build_rank_table(nodes)
    assert check_rank_table(table, profile, "prop") == []
    assert [s.server_id for s in table.servers] == sorted(n.server_id for n in nodes)
    flat = [(s.server_id, int(d.device_id), int(d.rank_id)) for s in table.servers for d in s.devices]
    assert [r for _, _, r in flat] == list(range(len(flat)))
    assert [(s, d) for s, d, _ in flat] == sorted((s, d) for s, d, _ in flat)
    for s in table.servers:
        assert table.ranks_of(s.server_id) == tuple(
            range(table.first_rank(s.server_id), table.first_rank(s.server_id) + len(s.devices))
        )


@FAST
@given(clusters(), st.data())
def test_shuffling_the_input_changes_nothing(case, data):
    _, nodes = case
    again = _shuffled(data.draw, nodes)
    assert rank_table_json(build_rank_table(again)) == rank_table_json(build_rank_table(nodes))


@FAST
@given(st.sampled_from(["1.0", "1.2"]).flatmap(lambda v: st.tuples(st.just(v), clusters(v))), st.data())
def test_merging_per_node_tables_equals_building_from_all_nodes(case, data):
    version, (profile, nodes) = case
    whole = build_rank_table(nodes, version)
    parts = data.draw(st.permutations([node_rank_table(whole, n.server_id) for n in nodes]))
    merged = merge_rank_tables(parts)
    assert rank_table_json(merged) == rank_table_json(whole)
    assert check_rank_table(merged, profile, "prop") == []


@FAST
@given(st.sampled_from(["1.0", "1.2"]).flatmap(lambda v: st.tuples(st.just(v), clusters(v))))
def test_json_load_json_round_trip_is_identical(case):
    version, (_, nodes) = case
    text = rank_table_json(build_rank_table(nodes, version))
    assert rank_table_json(parse_rank_table(text)) == text
