"""YAML level: syntax errors, duplicate keys, line numbers of nested fields, merge keys, files."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError
from orchestrator.inventory import load_inventory
from orchestrator.inventory.load import SYNTAX_FIELD, read_yaml
from tests.inventory.util import find, parse, problems, where

GOOD = """\
cluster:
  name: t
  profile: cpu
  workdir: /w
  python: /usr/bin/python3
nodes:
  - host: 10.0.0.1
"""


def test_syntax_error_has_line_and_is_the_only_problem():
    text = "cluster:\n  name: t\n  profile: [cpu\nnodes: []\n"
    (p,) = problems(text)
    assert p.field == SYNTAX_FIELD and p.line == 4
    assert "fix the YAML syntax" in p.fix


def test_tab_indentation_fix_says_spaces():
    (p,) = problems("cluster:\n\tname: t\n")
    assert p.line == 2 and "spaces" in p.fix


def test_empty_and_multi_document_files():
    (p,) = problems("# nothing\n")
    assert "empty" in p.message
    (p,) = problems(GOOD + "---\n" + GOOD)
    assert p.field == SYNTAX_FIELD and p.line == 8


def test_lines_of_nested_fields():
    located = read_yaml(
        "cluster:\n  ssh: {port: 22}\nnodes:\n  - host: a\n    devices:\n      - 0\n      - 1\n  - host: b\n",
        "f",
    )
    lines = located.lines
    assert lines["cluster.ssh.port"] == 2
    assert lines["nodes[0].devices"] == 5
    assert lines["nodes[0].devices[1]"] == 7
    assert lines["nodes[1]"] == 8 and lines["nodes[1].host"] == 8


def test_duplicate_keys_reported_with_both_lines_alongside_other_problems():
    found = problems(GOOD.replace("  python:", "  name: u\n  python:").replace("10.0.0.1", "a b"))
    dup = find(found, "cluster.name")
    assert dup.line == 5 and "first at line 2" in dup.message
    assert find(found, "nodes[0].host").line == 8


def test_keys_are_names_even_when_yaml_would_read_them_as_other_types():
    # `on` would be a boolean key and 9 an integer one; both are reported as unknown names.
    found = where(GOOD.replace("  name: t", "  name: t\n  on: 1\n  9: x"))
    assert {(3, "cluster.on"), (4, "cluster.9")} <= found


def test_anchors_and_merge_keys():
    ssh = "  ssh: &ssh {user: admin, port: 2200}\nnodes:\n"
    nodes = "    ssh: {<<: *ssh, port: 2201}\n  - host: 10.0.0.2\n    ssh: *ssh\n"
    inv = parse(GOOD.replace("nodes:\n", ssh) + nodes)
    assert [(n.ssh.user, n.ssh.port) for n in inv.nodes] == [("admin", 2201), ("admin", 2200)]
    assert find(problems(GOOD + "    ssh: {<<: [1]}\n"), "(yaml)").line == 8


def test_recursive_alias_is_a_problem():
    found = problems(GOOD + "job: &j\n  set: *j\n")
    assert any("recursive" in p.message for p in found)


def test_load_inventory_reads_a_file_and_names_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(GOOD.replace("/w", "w"))
    with pytest.raises(InputError) as info:
        load_inventory(path)
    (p,) = info.value.problems
    assert (p.file, p.line, p.field) == (str(path), 4, "cluster.workdir")
    path.write_text(GOOD)
    assert load_inventory(path).source == str(path)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError) as info:
        load_inventory(tmp_path / "nope.yaml")
    assert "cannot read" in info.value.problems[0].message
