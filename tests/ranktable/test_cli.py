"""`orchestrate ranktable merge / check` through the real CLI entry point."""

from __future__ import annotations

import json

from orchestrator.cli.main import main
from tests.ranktable.test_build import GOLDEN
from tests.ranktable.test_merge import write_hccl_tools_file


def test_merge_writes_only_the_given_output(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inputs = tmp_path / "in"
    inputs.mkdir()
    files = [write_hccl_tools_file(inputs, "10.0.0.2", 2), write_hccl_tools_file(inputs, "10.0.0.1", 1)]
    out = tmp_path / "out" / "rank_table.json"
    out.parent.mkdir()
    code = main(["ranktable", "merge", *map(str, files), "-o", str(out), "--profile", "atlas-800t-a2-64g"])
    assert code == 0
    assert out.read_bytes() == GOLDEN.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]  # nothing in the current folder
    text = capsys.readouterr().out
    assert "2 server(s), world size 16" in text and "10.0.0.2" in text and "ranks 8-15" in text


def test_merge_refuses_a_subnet_violation_and_writes_nothing(tmp_path, capsys):
    files = [write_hccl_tools_file(tmp_path, "10.0.0.1", 1), write_hccl_tools_file(tmp_path, "10.0.0.2", 2)]
    out = tmp_path / "merged.json"
    assert main(["ranktable", "merge", *map(str, files), "-o", str(out), "--profile", "atlas-800-32g"]) == 2
    assert not out.exists()
    assert "share subnet 192.168.1.0/24" in capsys.readouterr().err


def test_check_ok_and_with_problems(tmp_path, capsys):
    assert main(["ranktable", "check", str(GOLDEN), "--profile", "atlas-800t-a2-64g"]) == 0
    assert "ok:" in capsys.readouterr().out
    raw = json.loads(GOLDEN.read_text())
    raw["server_list"][1]["server_id"] = "127.0.1.1"
    raw["server_list"][1]["device"][0]["device_ip"] = "192.168.1.10"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    assert main(["ranktable", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert (
        "'127.0.1.1' is a loopback address" in err and "192.168.1.10 is also server_list[0].device[0]" in err
    )
    assert main(["ranktable", "check", str(GOLDEN), "--profile", "nope"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err
