"""`orchestrate plan`: summary, default folder, --json, --diff exit codes, errors as exit codes."""

from __future__ import annotations

import json

import pytest

from orchestrator.cli.main import main

INVENTORY = """\
cluster:
  name: pair
  profile: atlas-800t-a2-64g
  workdir: /opt/spark
  python: /usr/bin/python3
nodes:
  - host: 10.0.0.2
    devices: [0, 1, 2, 3, 4, 5, 6, 7]
    device_ips: [192.168.1.9, 192.168.1.10, 192.168.1.11, 192.168.1.12, 192.168.1.13, 192.168.1.14, 192.168.1.15, 192.168.1.16]
  - host: 10.0.0.1
    devices: [0, 1, 2, 3, 4, 5, 6, 7]
    device_ips: [192.168.1.1, 192.168.1.2, 192.168.1.3, 192.168.1.4, 192.168.1.5, 192.168.1.6, 192.168.1.7, 192.168.1.8]
"""


@pytest.fixture
def inventory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "pair.yaml"
    path.write_text(INVENTORY)
    return str(path)


def test_plan_prints_the_summary_and_writes_the_default_folder(inventory, tmp_path, capsys):
    assert main(["plan", inventory]) == 0
    out, err = capsys.readouterr()
    assert "Plan: pretrain on pair" in out and "dp 4 x mp 4 x pp 1" in out
    folder = tmp_path / "orchestrate-plans" / "pair-pretrain"
    assert f"plan written to {folder.relative_to(tmp_path)}/" in err
    assert (folder / "nodes" / "10.0.0.2" / "env_rank_15.sh").is_file()


def test_json_prints_plan_json(inventory, tmp_path, capsys):
    assert main(["plan", inventory, "--task", "predict", "--json", "--out", str(tmp_path / "p")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "orchestrate.plan/1" and data["task"] == "predict"
    assert data == json.loads((tmp_path / "p" / "plan.json").read_text())


def test_diff_exits_0_when_equal_and_1_when_different(inventory, tmp_path, capsys):
    old = str(tmp_path / "old")
    assert main(["plan", inventory, "--out", old]) == 0
    capsys.readouterr()
    assert main(["plan", inventory, "--out", str(tmp_path / "new"), "--diff", old]) == 0
    assert capsys.readouterr().out == ""
    assert main(["plan", inventory, "--set", "parallel.mp=8", "--diff", old, "--out", old]) == 1
    out = capsys.readouterr().out
    assert "-  model_parallel: 4" in out and "+  model_parallel: 8" in out


def test_errors_map_to_exit_codes(inventory, capsys):
    assert main(["plan", inventory, "--set", "parallel.mp=3"]) == 3  # PlanError
    assert "model parallel must divide num_heads" in capsys.readouterr().err
    assert main(["plan", inventory, "--set", "nonsense"]) == 2  # InputError


def test_default_inventory_is_the_local_cpu_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "--task", "finetune"]) == 0
    assert (tmp_path / "orchestrate-plans" / "local-finetune" / "plan.json").is_file()
    assert "dynamic_cluster" in capsys.readouterr().out
