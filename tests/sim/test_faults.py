"""Fault injection on a running simulated cluster; each test restores the node (needs root)."""

from __future__ import annotations

import socket
from pathlib import Path

import paramiko
import pytest

from orchestrator import sim
from orchestrator.cli.main import main
from orchestrator.sim import netns
from tests.fixtures.sim import ssh_client

pytestmark = pytest.mark.cluster
UNREACHABLE = (socket.timeout, TimeoutError, OSError, paramiko.SSHException)


def _connect(cluster, node, timeout: float = 1.5) -> paramiko.SSHClient:
    return ssh_client(cluster, node, timeout)


def _works(cluster, node) -> bool:
    with _connect(cluster, node, timeout=5) as client:
        _, out, _ = client.exec_command("hostname")
        return out.read().decode().strip() == node.hostname


def _status(cluster, node) -> dict:
    return next(n for n in sim.status(cluster.name)[0]["nodes"] if n["node"] == node.hostname)


def test_link_down_cuts_ssh_and_link_up_restores_it(sim_cluster):
    node = sim_cluster.nodes[1]
    assert main(["sim", "fault", "link-down", node.hostname, "--name", sim_cluster.name]) == 0
    try:
        assert _status(sim_cluster, node)["link"] == "DOWN"
        with pytest.raises(UNREACHABLE):
            _connect(sim_cluster, node)
    finally:
        sim.faults.link_up(sim_cluster.name, node.hostname)
    assert _status(sim_cluster, node)["link"] == "UP"
    assert _works(sim_cluster, node)


def test_sshd_stop_refuses_new_sessions_and_keeps_open_ones(sim_cluster):
    node = sim_cluster.nodes[0]
    open_session = ssh_client(sim_cluster, node)
    sim.faults.sshd_stop(sim_cluster.name, "node1")
    try:
        assert not _status(sim_cluster, node)["sshd"]
        with pytest.raises(paramiko.ssh_exception.NoValidConnectionsError):
            _connect(sim_cluster, node)
        _, out, _ = open_session.exec_command("echo still-here")
        assert out.read().decode().strip() == "still-here"
    finally:
        open_session.close()
        sim.faults.sshd_start(sim_cluster.name, "node1")
    assert _status(sim_cluster, node)["sshd"] and _works(sim_cluster, node)


def test_freeze_stops_every_process_and_thaw_resumes(sim_cluster):
    node = sim_cluster.nodes[1]
    init = sim_cluster.state().node(node.hostname).init_pid
    sim.faults.freeze(sim_cluster.name, node.hostname)
    try:
        members = netns.pidns_members(init)
        assert len(members) >= 2 and all(netns.stopped(p) for p in members)
        with pytest.raises(UNREACHABLE):
            _connect(sim_cluster, node)  # TCP is accepted by the kernel, but no banner ever comes
    finally:
        sim.faults.thaw(sim_cluster.name, node.hostname)
    assert not any(netns.stopped(p) for p in netns.pidns_members(init))
    assert _works(sim_cluster, node)


def test_kill_ends_every_process_and_boot_restarts_with_same_identity(sim_cluster):
    node = sim_cluster.nodes[1]
    sim_cluster.exec(node.hostname, "setsid sleep 300 >/dev/null 2>&1 < /dev/null &")
    (node.workdir / "survives-kill").write_text("x")
    before = netns.netns_pids(node.netns)
    assert len(before) >= 3  # launcher, init, sshd, sleep
    sim.faults.kill(sim_cluster.name, node.hostname)
    try:
        assert netns.wait_gone(before, 5.0) == [] and netns.netns_pids(node.netns) == []
        assert not _status(sim_cluster, node)["running"]
        with pytest.raises(UNREACHABLE):
            _connect(sim_cluster, node)
    finally:
        sim.faults.boot(sim_cluster.name, node.hostname)
    assert _works(sim_cluster, node)  # same host key: known_hosts still matches
    assert Path(node.workdir / "survives-kill").exists()
    assert sim_cluster.exec(node.hostname, "cat /opt/orchestrate-node/survives-kill").stdout == "x"
