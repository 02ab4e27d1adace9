"""`orchestrate doctor` against real sshd nodes: a healthy cluster passes, a faulty one fails clearly."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import time

import pytest

from orchestrator.cli.main import main
from orchestrator.doctor import Status, run_doctor
from orchestrator.inventory import load_inventory
from orchestrator.sim import node as simnode

pytestmark = pytest.mark.cluster


def test_healthy_cluster_passes(sim_cluster, capsys):
    assert main(["doctor", str(sim_cluster.inventory), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"]
    for host, checks in data["nodes"].items():
        # the cpu profile has no Ascend install to check: `cann` is skipped, every other check passes
        assert checks.pop("cann")["status"] == "skip", (host, checks)
        assert {c["status"] for c in checks.values()} == {"ok"}, (host, checks)


def test_faulty_cluster_fails_with_each_cause(faulty_inventory_file, faulty_inventory, capsys):
    inv = faulty_inventory
    n1, n2 = (n.host for n in inv.nodes)
    report = run_doctor(inv)
    failing = {(c.host, c.name) for c in report.checks if c.status == Status.FAIL}
    assert failing == {(n1, "npu_procs"), (n1, "nics"), (n2, "nics")}
    assert "4242" in report.get(n1, "npu_procs").detail
    assert (
        "link is DOWN" in report.get(n2, "nics").detail and "192.168.101.10" in report.get(n2, "nics").detail
    )
    assert main(["doctor", str(faulty_inventory_file)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "doctor FAILED" in out


def _wait_listening(cluster, hostname: str, port: int) -> None:
    for _ in range(200):
        if cluster.exec(hostname, ["ss", "-Hltn", f"sport = :{port}"]).stdout.strip():
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} in {hostname}")


def test_busy_port_and_unreachable_node(sim_cluster):
    inv = load_inventory(sim_cluster.inventory)
    n1, n2 = inv.nodes
    node = sim_cluster.state().node(sim_cluster.nodes[0].hostname)
    holder = "import socket, time; s = socket.socket(); s.bind(('0.0.0.0', 8118)); s.listen(); time.sleep(60)"
    argv = simnode.exec_argv(node, [n1.python, "-c", holder])  # inside node1, not over SSH
    proc = subprocess.Popen(argv, start_new_session=True)
    try:
        _wait_listening(sim_cluster, node.hostname, 8118)
        ghost = dataclasses.replace(
            n2, host=n2.host.rsplit(".", 1)[0] + ".251", ssh=dataclasses.replace(n2.ssh, connect_timeout=1)
        )
        report = run_doctor(dataclasses.replace(inv, nodes=(n1, ghost)))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # nsenter forks: end the whole group
        proc.wait()
    ports = report.get(n1.host, "ports")
    assert ports.status == Status.FAIL and "8118" in ports.detail
    assert (
        report.get(ghost.host, "ssh").status == Status.FAIL
        and ghost.host in report.get(ghost.host, "ssh").detail
    )
    assert report.get(ghost.host, "versions").status == Status.SKIP
    assert report.get(n1.host, "versions").status == Status.OK  # one node left: nothing to disagree with
