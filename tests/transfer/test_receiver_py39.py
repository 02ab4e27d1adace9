"""The node receiver runs on the nodes' Python 3.9: a whole local push with a 3.9 node interpreter."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.transfer import Target, build_items, push, source_files
from orchestrator.transfer.node_store import HashCache
from tests.transfer.helpers import node, random_file
from tests.unit.test_py39_compat import PY39


@pytest.mark.skipif(PY39 is None, reason="no Python 3.9 interpreter on this machine")
def test_push_with_a_python39_receiver(tmp_path):
    src = random_file(tmp_path / "src" / "x.ckpt", 100_000)
    n = dataclasses.replace(node("localhost", tmp_path / "w", local=True), python=PY39)
    items = tuple(build_items(source_files(src), HashCache(None)))
    push([Target(n, str(tmp_path / "dest"), items)]).check()
    assert (tmp_path / "dest" / "x.ckpt").read_bytes() == src.read_bytes()
    assert push([Target(n, str(tmp_path / "dest"), items)]).check().nodes[0].skipped == 1
