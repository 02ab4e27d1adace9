"""Merge per-node rank tables (ours or the files mindformers' hccl_tools writes) into one.

Unlike the stock merge_hccl.py: the result does not depend on argument order (servers are re-ranked
by HCCL's rule, see :mod:`.build`), a server given twice or a device IP used twice is an error naming
both files, mixed versions are refused, and nothing is written implicitly (the caller picks the path).

hccl_tools writes one file per node, ``hccl_<n>p_<devices>_<server_ip>.json``::

    {"version": "1.0", "server_count": "1",
     "server_list": [{"server_id": "10.0.0.1", "device": [{"device_id": "0", "device_ip": "...",
                      "rank_id": "0"}, ...], "host_nic_ip": "reserve"}],
     "status": "completed"}

with local ranks from 0; its merged files (several servers) are accepted as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

from orchestrator.errors import InputError, Problem
from orchestrator.ranktable.build import build_rank_table, table_nodes
from orchestrator.ranktable.io import load_rank_table
from orchestrator.ranktable.model import RankTable


def _merge(tables: Sequence[RankTable], sources: Sequence[str]) -> RankTable:
    if not tables:
        raise InputError([Problem("<merge>", "files", "no rank tables to merge", "give at least one file")])
    problems = []
    versions = sorted({t.version for t in tables})
    if len(versions) > 1:
        listing = ", ".join(f"{src}: {t.version}" for t, src in zip(tables, sources))
        problems.append(
            Problem(
                sources[0],
                "version",
                f"tables have different versions ({listing})",
                "merge tables of one version",
            )
        )
    servers: dict[str, str] = {}
    ips: dict[str, str] = {}
    for table, src in zip(tables, sources):
        for i, server in enumerate(table.servers):
            where = f"server_list[{i}].server_id"
            if server.server_id in servers:
                problems.append(
                    Problem(
                        src,
                        where,
                        f"server {server.server_id} is also in {servers[server.server_id]}",
                        "give each node's table once",
                    )
                )
                continue
            servers[server.server_id] = src
            for j, dev in enumerate(server.devices):
                if dev.device_ip and dev.device_ip in ips:
                    problems.append(
                        Problem(
                            src,
                            f"server_list[{i}].device[{j}].device_ip",
                            f"{dev.device_ip} is also used in {ips[dev.device_ip]}",
                            "give every NPU NIC its own address",
                        )
                    )
                ips.setdefault(dev.device_ip, f"{src} ({server.server_id} device {dev.device_id})")
    if problems:
        raise InputError(problems)
    nodes = [node for table in tables for node in table_nodes(table)]
    return build_rank_table(nodes, versions[0])


def merge_rank_tables(tables: Sequence[RankTable]) -> RankTable:
    """One table with every server of ``tables``, re-ranked; duplicates raise InputError."""
    return _merge(tables, [f"<table {i}>" for i in range(len(tables))])


def import_hccl_tools_files(paths: Sequence[Union[str, Path]]) -> RankTable:
    """Read per-node files written by mindformers' hccl_tools (or by us) and merge them."""
    problems, tables = [], []
    for path in paths:
        try:
            tables.append(load_rank_table(path))
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return _merge(tables, [str(p) for p in paths])
