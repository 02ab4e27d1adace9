"""The fake npu-smi and hccn_tool as installed executables, on the host (fast, no cluster)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.sim import hardware as hw
from orchestrator.sim import tools


@pytest.fixture
def node_tools(tmp_path: Path, monkeypatch, capsys):
    """``run(tool, *args)`` runs an installed fake tool's main() in-process (``run.exe`` for real)."""
    h = hw.default_hardware(["a-node1", "a-node2"], devices=4)
    node2 = h.nodes[1]
    npus = (*node2.npus[:3], dataclasses.replace(node2.npus[3], link="DOWN"))
    h = dataclasses.replace(h, nodes=(h.nodes[0], dataclasses.replace(node2, npus=npus)))
    hw.save(h, tmp_path / "hardware.yaml")
    conf = tmp_path / "etc" / "node.json"
    conf.parent.mkdir()
    conf.write_text(json.dumps({"hardware": str(tmp_path / "hardware.json"), "node": "a-node1"}))
    exes = tools.install(tmp_path / "tools", sys.executable)
    monkeypatch.setenv("ORCHESTRATE_SIM_NODE_CONF", str(conf))
    monkeypatch.syspath_prepend(str(tmp_path / "tools"))
    for module in ("printers", "nodeconf", *tools.COMMANDS.values()):
        monkeypatch.delitem(sys.modules, module, raising=False)

    def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        code = importlib.import_module(tools.COMMANDS[tool]).main(list(args))
        out = capsys.readouterr()
        return subprocess.CompletedProcess([tool, *args], code, out.out, out.err)

    run.exe = exes
    run.procs_dir = conf.parent / "npu-procs"
    return run


def test_installed_executables_run(node_tools):
    for tool, args, want in [
        ("npu-smi", ["-v"], "npu-smi version: 25.3.rc1\n"),
        ("hccn_tool", ["-i", "0", "-link", "-g"], "link status: UP\n"),
    ]:
        proc = subprocess.run([str(node_tools.exe[tool]), *args], capture_output=True, text=True, timeout=10)
        assert (proc.returncode, proc.stdout) == (0, want), proc.stderr


def test_npu_smi_commands(node_tools):
    assert node_tools("npu-smi", "-v").stdout == "npu-smi version: 25.3.rc1\n"
    info = node_tools("npu-smi", "info").stdout
    assert info.count("910B3") == 4 and {len(x) for x in info.splitlines()} == {98}
    assert "Total Count                    : 4" in node_tools("npu-smi", "info", "-l").stdout
    assert node_tools("npu-smi", "info", "-m").stdout.count("Mcu") == 4
    assert "0xD802" in node_tools("npu-smi", "info", "-t", "board", "-i", "1").stdout
    bad = node_tools("npu-smi", "info", "-x")
    assert bad.returncode != 0 and "Command error" in bad.stdout


def test_live_process_registration_shows_while_alive_and_until_released(node_tools, monkeypatch):
    sleeper = subprocess.Popen(["sleep", "30"])
    node_tools.procs_dir.mkdir()
    (node_tools.procs_dir / f"{sleeper.pid}.json").write_text(
        json.dumps({"npu": 2, "pid": sleeper.pid, "name": "train", "memory_mb": 512})
    )
    row = f"| 2       0                 | {sleeper.pid:<13d} | train "
    try:
        assert row in node_tools("npu-smi", "info").stdout
    finally:
        sleeper.kill()
        sleeper.wait()
    ended = time.time()
    assert row in node_tools("npu-smi", "info").stdout  # a real driver releases the NPU seconds later
    claim = json.loads((node_tools.procs_dir / f"{sleeper.pid}.json").read_text())
    assert ended - 1 <= claim["exited"] <= time.time()  # stamped by the first npu-smi that saw it gone
    monkeypatch.setattr(time, "time", lambda: claim["exited"] + hw.Hardware(nodes=()).npu_release_s)
    assert "train" not in node_tools("npu-smi", "info").stdout
    assert not list(node_tools.procs_dir.glob("*.json"))  # the released claim was removed


def test_a_held_npu_cannot_be_claimed_twice(node_tools):
    nodeconf = importlib.import_module("nodeconf")
    assert nodeconf.claim(3, "python", 100) == (True, [])
    other = subprocess.run(
        [sys.executable, "-c", "import sys, nodeconf; print(nodeconf.claim(int(sys.argv[1]))[0])", "3"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(nodeconf.__file__).rsplit("/", 1)[0]},
    )  # fmt: skip
    assert other.stdout.strip() == "False", other.stderr
    assert (
        f"| 3       0                 | {os.getpid():<13d} | python " in node_tools("npu-smi", "info").stdout
    )


def test_hccn_tool_answers_and_pings(node_tools):
    assert (
        node_tools("hccn_tool", "-i", "1", "-ip", "-g").stdout
        == "ipaddr:192.168.101.11\nnetmask:255.255.255.0\n"
    )
    assert node_tools("hccn_tool", "-i", "0", "-link", "-g").stdout == "link status: UP\n"
    assert node_tools("hccn_tool", "-i", "0", "-net_health", "-g").stdout == "net health status: Success\n"
    assert (
        node_tools("hccn_tool", "-i", "0", "-netdetect", "-g").stdout == "netdetect address: 192.168.101.1\n"
    )
    assert (
        "received, 0.00% packet loss"
        in node_tools("hccn_tool", "-i", "0", "-ping", "-g", "address", "192.168.102.12").stdout
    )
    assert (
        "0 received" in node_tools("hccn_tool", "-i", "0", "-ping", "-g", "address", "192.168.102.13").stdout
    )  # DOWN
    assert "0 received" in node_tools("hccn_tool", "-i", "0", "-ping", "-g", "address", "10.9.9.9").stdout
    bad = node_tools("hccn_tool", "-i", "9", "-ip", "-g")
    assert bad.returncode == 1 and "Invalid device id" in bad.stderr
