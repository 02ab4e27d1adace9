"""Rank table JSON: exact writing, strict reading with every problem named."""

from __future__ import annotations

import json
import stat

import pytest

from orchestrator.errors import InputError
from orchestrator.ranktable import (
    build_rank_table,
    load_rank_table,
    parse_rank_table,
    rank_table_json,
    write_rank_table,
)
from tests.ranktable.test_build import GOLDEN
from tests.ranktable.util import a2_node


def test_golden_loads_and_writes_back_byte_identical(tmp_path):
    table = load_rank_table(GOLDEN)
    assert table.world_size == 16 and table.first_rank("10.0.0.2") == 8
    out = write_rank_table(table, tmp_path / "merged.json")
    assert out.read_bytes() == GOLDEN.read_bytes()
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["merged.json"]  # no temp file left


def test_foreign_key_order_and_unknown_keys_are_read():
    text = json.dumps(
        {
            "status": "completed",
            "server_list": [
                {
                    "device": [{"rank_id": "0", "device_ip": "192.168.1.1", "device_id": "1"}],
                    "server_id": "10.0.0.1",
                    "container_ip": "172.17.0.2",
                }
            ],
            "server_count": "1",
            "version": "1.0",
        }
    )
    table = parse_rank_table(text)
    assert table.servers[0].host_nic_ip == "reserve" and table.servers[0].devices[0].device_id == "1"
    assert json.loads(rank_table_json(table))["server_list"][0]["host_nic_ip"] == "reserve"


def test_every_structural_problem_at_once():
    text = json.dumps(
        {
            "version": "1.0",
            "server_count": "3",
            "status": "completed",
            "server_list": [
                {
                    "server_id": "10.0.0.1",
                    "device": [
                        {"device_id": 0, "device_ip": "192.168.1.1", "rank_id": "0"},
                        {"device_id": "x", "device_ip": "192.168.1.2"},
                    ],
                },
                {"device": []},
            ],
        }
    )
    with pytest.raises(InputError) as info:
        parse_rank_table(text, "hccl.json")
    fields = [p.field for p in info.value.problems]
    assert fields == [
        "server_list[0].device[0].device_id",
        "server_list[0].device[1].device_id",
        "server_list[0].device[1].rank_id",
        "server_list[1].server_id",
        "server_count",
    ]
    assert (
        info.value.problems[0].message == "0 is not a string" and "JSON string" in info.value.problems[0].fix
    )
    assert all(p.file == "hccl.json" for p in info.value.problems)


def test_bad_json_unsupported_version_and_unreadable_file(tmp_path):
    with pytest.raises(InputError, match="hccl.json:3: json"):
        parse_rank_table('{\n"version": "1.0",\n}', "hccl.json")
    with pytest.raises(InputError, match="version: '0.9' is not supported"):
        parse_rank_table(
            json.dumps({"version": "0.9", "server_count": "0", "status": "completed", "server_list": []})
        )
    with pytest.raises(InputError, match="cannot read"):
        load_rank_table(tmp_path / "missing.json")
    with pytest.raises(InputError, match="does not exist"):
        write_rank_table(load_rank_table(GOLDEN), tmp_path / "no" / "such.json")


def test_version_1_2_round_trip():
    table = build_rank_table([a2_node("10.0.0.1", 1, range(2))], "1.2")
    again = parse_rank_table(rank_table_json(table))
    assert again == table and rank_table_json(again) == rank_table_json(table)
