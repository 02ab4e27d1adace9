"""Plans at cluster scale: 256 A2 nodes (2048 ranks) give the same bytes twice, every node's rank
table is its slice of the merged one, the YAML is rendered and checked once per job folder, and the
summary folds alike nodes into one row."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.plan import render
from orchestrator.plan.plan_io import write_plan
from orchestrator.plan.planner import make_plan
from orchestrator.plan.summary import summary_text
from tests.plan.helpers import A2, make_inventory

NODES = 256


def _big_inventory(count: int = NODES, workdirs: tuple[str, ...] = ("/opt/spark",)):
    """``count`` A2 nodes, each with its NPU NICs in its own /24; workdirs assigned round robin."""
    inv = make_inventory(A2, hosts=tuple(f"10.{k // 250}.{k % 250}.1" for k in range(count)), ips=False)
    nodes = tuple(
        replace(
            n,
            device_ips=tuple(f"172.{16 + k // 250}.{k % 250}.{d + 1}" for d in range(8)),
            workdir=workdirs[k % len(workdirs)],
        )  # fmt: skip
        for k, n in enumerate(inv.nodes)
    )
    return replace(inv, nodes=nodes)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def big_plan():
    return make_plan(_big_inventory(), "pretrain")


def test_a_large_plan_is_byte_identical_across_runs(tmp_path, big_plan):
    write_plan(big_plan, tmp_path / "a")
    write_plan(make_plan(_big_inventory(), "pretrain"), tmp_path / "b")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(a) == 3 + NODES * (1 + 1 + 1 + 8) and a == b


def test_each_node_table_is_its_slice_of_the_merged_table(big_plan):
    merged = json.loads(big_plan.rank_table_text)["server_list"]
    assert [s["server_id"] for s in merged] == [n.host for n in big_plan.nodes]
    for node, entry in zip(big_plan.nodes, merged):
        own = json.loads(node.rank_table_text)
        assert own["server_count"] == "1" and own["server_list"][0]["server_id"] == node.host
        first = int(entry["device"][0]["rank_id"])
        renumbered = [{**d, "rank_id": str(int(d["rank_id"]) - first)} for d in entry["device"]]
        assert own["server_list"][0]["device"] == renumbered
        assert [int(d["rank_id"]) for d in entry["device"]] == list(node.ranks)


def test_the_yaml_is_checked_once_per_job_folder_and_matches_rendering_each_node(monkeypatch):
    calls = []
    parse = render.parse_rendered
    monkeypatch.setattr(render, "parse_rendered", lambda text, name: calls.append(name) or parse(text, name))
    inv = _big_inventory(64, workdirs=("/opt/spark", "/data/spark"))
    plan = make_plan(inv, "pretrain")
    assert len(calls) == 2  # two job folders, 64 nodes
    monkeypatch.setattr(render, "_HOST_SAFE", re.compile(r"(?!)"))  # no host qualifies: one by one
    alone = make_plan(inv, "pretrain")
    assert len(calls) == 2 + 2 + 64  # the stand-in per job folder again, then every node on its own
    assert [n.yaml_text for n in plan.nodes] == [n.yaml_text for n in alone.nodes]
    assert len({n.yaml_text for n in plan.nodes}) == 64 and plan.nodes[0].host in plan.nodes[0].yaml_text


def test_the_summary_folds_alike_nodes_and_says_how_files_relate(big_plan):
    text = summary_text(big_plan)
    first, last = big_plan.nodes[0].host, big_plan.nodes[-1].host
    assert f"{first} ... {last} ({NODES} nodes)" in text
    assert f"0..7 -> 0..{NODES * 8 - 1} (8 per node)" in text
    assert "pretrain.yaml (the same on every node but for its host)" in text
    assert len(text.splitlines()) < 60


def test_a_different_node_starts_a_new_row():
    inv = _big_inventory(40)
    odd = replace(inv.nodes[5], devices=tuple(range(8)), workdir="/elsewhere")
    plan = make_plan(replace(inv, nodes=inv.nodes[:5] + (odd,) + inv.nodes[6:]), "pretrain")
    text = summary_text(plan)
    assert "/elsewhere/jobs/test-pretrain" in text and text.count(" nodes)") == 2
    assert "2 distinct renderings, one per job folder" in text
