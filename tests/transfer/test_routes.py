"""What each node needs and how the bytes travel (pure)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.transfer.manifest import FileEntry, Item
from orchestrator.transfer.model import Target
from orchestrator.transfer.routes import needs_of, plan_routes, stream_items
from tests.transfer.helpers import node

A = Item(Path("/src/a"), FileEntry("a", 100, 1, "ha"))
B = Item(Path("/src/b"), FileEntry("b", 50, 1, "hb"))


def _needs(host, answer_files, items=(A, B), local=False, prefix_ok=lambda i, n, h: h == "good"):
    t = Target(node(host, Path("/w"), local=local), "/d", items)
    return needs_of(t, {"files": answer_files, "strays": []}, prefix_ok)


def test_needs_skip_same_files_and_trust_only_verified_parts():
    n = _needs("h1", {"a": {"same": True}, "b": {"same": False, "part_size": 20, "part_sha256": "good"}})
    assert n.same == ["a"] and n.send == {"b": 20} and n.resumed == 20
    bad = _needs("h1", {"a": {"same": False, "part_size": 20, "part_sha256": "evil"}, "b": {"same": True}})
    assert bad.send == {"a": 0}
    idle = _needs("h1", {"a": {"same": True}, "b": {"same": True}})
    assert not idle.busy


def test_nodes_wanting_the_same_files_form_one_chain_others_go_direct():
    n1 = _needs("h1", {"a": {"same": False}, "b": {"same": True}})
    n2 = _needs("h2", {"a": {"same": False, "part_size": 30, "part_sha256": "good"}, "b": {"same": False}})
    n3 = _needs("h3", {"a": {"same": True}}, items=(A,))  # other files: idle
    n4 = _needs("h4", {"a": {"same": False}}, items=(A,))
    routes = plan_routes([n1, n2, n3, n4], "auto")
    assert [(r.kind, [n.target.host for n in r.nodes]) for r in routes] == [("relay", ["h1", "h2"]),
                                                                            ("direct", ["h4"])]  # fmt: skip
    # the chain streams the union, each file from the smallest trusted prefix
    assert [(i.entry.rel, off) for i, off in stream_items(routes[0])] == [("a", 0), ("b", 0)]
    assert [(i.entry.rel, off) for i, off in stream_items(plan_routes([n2], "auto")[0])] == [
        ("a", 30),
        ("b", 0),
    ]


def test_direct_mode_and_local_nodes_never_chain():
    files = {"a": {"same": False}, "b": {"same": False}}
    direct = plan_routes([_needs("h1", files), _needs("h2", files)], "direct")
    assert [r.kind for r in direct] == ["direct", "direct"]
    local = plan_routes([_needs("h1", files, local=True), _needs("h2", files)], "relay")
    assert [r.kind for r in local] == ["direct", "direct"]


def test_plan_input_transfers_become_targets(tmp_path):
    from orchestrator.plan.model import Transfer
    from orchestrator.transfer.node_store import HashCache
    from orchestrator.transfer.targets import targets_from_transfers
    from tests.transfer.helpers import random_file

    data = random_file(tmp_path / "train.mindrecord", 10)
    random_file(tmp_path / "tok" / "vocab.model", 5)
    nodes = [node("h1", tmp_path), node("h2", tmp_path)]
    xs = [Transfer(h, "input", str(data), "/j/inputs/train_dataset/train.mindrecord") for h in ("h1", "h2")]
    xs += [Transfer("h1", "input", str(tmp_path / "tok"), "/j/inputs/tokenizer/tok"),
           Transfer("h1", "generated", "nodes/h1/commands.sh", "/j/commands.sh")]  # fmt: skip
    targets = targets_from_transfers(xs, nodes, HashCache(None))
    assert [(t.host, t.dest, [i.entry.rel for i in t.items]) for t in targets] == [
        ("h1", "/j/inputs/train_dataset", ["train.mindrecord"]),
        ("h2", "/j/inputs/train_dataset", ["train.mindrecord"]),
        ("h1", "/j/inputs/tokenizer/tok", ["vocab.model"]),
    ]
    assert targets[0].items is targets[1].items  # hashed once
