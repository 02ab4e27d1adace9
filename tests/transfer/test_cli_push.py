"""`orchestrate push` on a local-node inventory: summary, JSON, skip on re-push, checkpoint checks."""

from __future__ import annotations

import json

from orchestrator.cli.main import main
from tests.transfer.helpers import random_file


def _inventory(tmp_path):
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "cluster: {name: t, profile: cpu, workdir: "
        + str(tmp_path / "node")
        + ', python: "{controller_python}"}\n'
        "nodes:\n  - {host: 127.0.0.1, local: true, devices: [0, 1]}\n"
    )
    return inv


def test_push_json_then_nothing_moves(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    data = random_file(tmp_path / "d" / "train.mindrecord", 5000)
    random_file(tmp_path / "d" / "train.mindrecord.db", 100)
    argv = ["push", str(_inventory(tmp_path)), str(data), "--to", "inputs", "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["ok"] and first["controller_bytes"] == 5100 and first["files_sent"] == 2
    assert (tmp_path / "node" / "inputs" / "train.mindrecord.db").stat().st_size == 100
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["controller_bytes"] == 0 and again["files_skipped"] == 2


def test_checkpoint_layout_problems_stop_before_any_push(tmp_path, capsys):
    random_file(tmp_path / "m" / "rank_0" / "a.ckpt", 10)
    random_file(tmp_path / "m" / "rank_2" / "c.ckpt", 10)
    code = main(["push", str(_inventory(tmp_path)), str(tmp_path / "m"), "--to", "ckpt", "--checkpoint"])
    assert code == 2 and "not contiguous: rank_1 is missing" in capsys.readouterr().err
    assert not (tmp_path / "node").exists()


def test_sharded_checkpoint_lands_in_rank_folders(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for r in range(2):
        random_file(tmp_path / "m" / f"rank_{r}" / f"s{r}.ckpt", 100)
    assert main(["push", str(_inventory(tmp_path)), str(tmp_path / "m"), "--to", "ckpt", "--checkpoint"]) == 0
    assert "127.0.0.1" in capsys.readouterr().out
    files = sorted(
        p.relative_to(tmp_path / "node" / "ckpt").as_posix() for p in (tmp_path / "node" / "ckpt").rglob("*")
    )
    assert files == ["rank_0", "rank_0/s0.ckpt", "rank_1", "rank_1/s1.ckpt"]
