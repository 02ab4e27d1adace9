"""HCCL rank tables: typed model, build (HCCL's rank order), checks, JSON, merge and import.

Ranks follow the dictionary (string) order of server_id, then the physical device id: see
:mod:`orchestrator.ranktable.build`.
"""

from orchestrator.ranktable.build import build_rank_table, node_rank_table, node_rank_tables, table_nodes
from orchestrator.ranktable.check import check_rank_table
from orchestrator.ranktable.io import (
    load_rank_table,
    parse_rank_table,
    rank_table_json,
    table_dict,
    write_rank_table,
)
from orchestrator.ranktable.merge import import_hccl_tools_files, merge_rank_tables
from orchestrator.ranktable.model import NodeDevices, RankDevice, RankServer, RankTable, SuperPod

__all__ = [
    "NodeDevices",
    "RankDevice",
    "RankServer",
    "RankTable",
    "SuperPod",
    "build_rank_table",
    "check_rank_table",
    "import_hccl_tools_files",
    "load_rank_table",
    "merge_rank_tables",
    "node_rank_table",
    "node_rank_tables",
    "parse_rank_table",
    "rank_table_json",
    "table_dict",
    "table_nodes",
    "write_rank_table",
]
