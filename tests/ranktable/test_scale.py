"""The parts that run once per node or per NIC at cluster scale: every node's own table in one pass,
the JSON writer, and the IPv4 reading of the checks, each held equal to the plain way."""

from __future__ import annotations

import ipaddress
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.ranktable import (
    NodeDevices,
    build_rank_table,
    node_rank_table,
    node_rank_tables,
    rank_table_json,
    table_dict,
    table_nodes,
)
from orchestrator.ranktable.check import _ip
from tests.ranktable.util import a2_node


def _a3_nodes(count: int) -> list[NodeDevices]:
    return [
        NodeDevices(
            f"10.1.{k}.1",
            tuple((d, f"10.9.{k}.{d + 1}") for d in (3, 1, 2, 0)),
            str(k % 3),
            f"172.16.{k}.1",
            tuple(str(k * 16 + d) for d in (3, 1, 2, 0)),
        )  # fmt: skip
        for k in range(count)
    ]


def test_every_node_table_at_once_equals_each_one_alone():
    for table in (
        build_rank_table([a2_node(f"10.0.{k}.1", k) for k in range(40)]),
        build_rank_table(_a3_nodes(12), "1.2"),
    ):
        own = node_rank_tables(table)
        assert list(own) == [s.server_id for s in table.servers]
        for s in table.servers:
            assert own[s.server_id] == node_rank_table(table, s.server_id)
            assert own[s.server_id] == build_rank_table(
                [n for n in table_nodes(table) if n.server_id == s.server_id], table.version
            )


def test_the_json_writer_gives_json_dumps_bytes():
    for table in (build_rank_table([a2_node("10.0.0.2", 2), a2_node("10.0.0.1", 1)]),
                  build_rank_table(_a3_nodes(5), "1.2")):  # fmt: skip
        assert rank_table_json(table) == json.dumps(table_dict(table), indent=4, ensure_ascii=False) + "\n"


def _reference(text: str):
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        return None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["0", "1", "9", "25", "255", "256", "01", "007", "1000", "٣", "", " ", "x"]),
                min_size=1, max_size=5).map(".".join))  # fmt: skip
def test_ipv4_reading_agrees_with_ipaddress(text):
    assert _ip(text) == _reference(text)


def test_ipv4_reading_of_plain_and_loopback_addresses():
    for text in ("10.0.0.1", "0.0.0.0", "255.255.255.255", "127.0.0.1", "192.168.1.16"):
        assert _ip(text) == _reference(text)
