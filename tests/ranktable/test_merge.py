"""Merging per-node tables and importing mindformers hccl_tools files, without the stock defects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.ranktable import (
    build_rank_table,
    import_hccl_tools_files,
    merge_rank_tables,
    node_rank_table,
    rank_table_json,
)
from tests.ranktable.util import a2_node


def write_hccl_tools_file(folder: Path, server_id: str, subnet: int, devices=range(8)) -> Path:
    """A per-node file exactly as mindformers' hccl_tools writes it (its key order, indent 4)."""
    device = [
        {"device_id": str(d), "device_ip": f"192.168.{subnet}.{10 + d}", "rank_id": str(r)}
        for r, d in enumerate(devices)
    ]
    table = {
        "version": "1.0",
        "server_count": "1",
        "server_list": [{"server_id": server_id, "device": device, "host_nic_ip": "reserve"}],
        "status": "completed",
    }
    path = folder / f"hccl_{len(device)}p_{''.join(map(str, devices))}_{server_id}.json"
    path.write_text(json.dumps(table, indent=4))
    return path


def test_import_reranks_by_server_id_string_order_whatever_the_argument_order(tmp_path):
    paths = [write_hccl_tools_file(tmp_path, f"10.0.0.{k}", k) for k in (9, 10, 11)]
    merged = import_hccl_tools_files(paths)
    assert [s.server_id for s in merged.servers] == ["10.0.0.10", "10.0.0.11", "10.0.0.9"]
    assert merged.first_rank("10.0.0.9") == 16 and merged.world_size == 24
    assert rank_table_json(import_hccl_tools_files(paths[::-1])) == rank_table_json(merged)
    expected = build_rank_table([a2_node(f"10.0.0.{k}", k) for k in (9, 10, 11)])
    assert merged == expected


def test_import_with_device_subsets(tmp_path):
    paths = [
        write_hccl_tools_file(tmp_path, "10.0.0.1", 1, range(4, 8)),
        write_hccl_tools_file(tmp_path, "10.0.0.2", 2, range(4, 8)),
    ]
    merged = import_hccl_tools_files(paths)
    assert [(d.device_id, d.rank_id) for d in merged.server("10.0.0.2").devices] == [
        ("4", "4"),
        ("5", "5"),
        ("6", "6"),
        ("7", "7"),
    ]


def test_duplicate_server_across_files_is_an_error_naming_both(tmp_path):
    a = write_hccl_tools_file(tmp_path, "10.0.0.1", 1)
    copy = tmp_path / "copy.json"
    copy.write_text(a.read_text())
    with pytest.raises(InputError) as info:
        import_hccl_tools_files([a, copy])
    first = info.value.problems[0]
    assert first.file == str(copy) and f"server 10.0.0.1 is also in {a}" == first.message


def test_duplicate_device_ip_across_files(tmp_path):
    a = write_hccl_tools_file(tmp_path, "10.0.0.1", 1)
    b = write_hccl_tools_file(tmp_path, "10.0.0.2", 1)
    with pytest.raises(InputError, match=r"192.168.1.10 is also used in .*10.0.0.1 device 0"):
        import_hccl_tools_files([a, b])


def test_mixed_versions_and_nothing_to_merge():
    v10 = build_rank_table([a2_node("10.0.0.1", 1)])
    v12 = build_rank_table([a2_node("10.0.0.2", 2)], "1.2")
    with pytest.raises(InputError, match="different versions"):
        merge_rank_tables([v10, v12])
    with pytest.raises(InputError, match="no rank tables"):
        merge_rank_tables([])


def test_unreadable_files_are_all_reported(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InputError) as info:
        import_hccl_tools_files([bad, tmp_path / "absent.json"])
    assert [p.file for p in info.value.problems] == [str(bad), str(tmp_path / "absent.json")]


def test_per_node_tables_merge_back_into_the_whole():
    whole = build_rank_table([a2_node("10.0.0.9", 1), a2_node("10.0.0.10", 2)], "1.2")
    parts = [node_rank_table(whole, s.server_id) for s in whole.servers]
    assert merge_rank_tables(parts[::-1]) == whole
