"""Preflight against a node's installed agent (local transport, a stand-in agent of another version)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestrator.launch import agent_rpc
from orchestrator.launch.start import NodeNotFree, _preflight_node
from orchestrator.transport import LocalTransport

OLD_AGENT = """import json, sys
verb = [a for a in sys.argv[1:] if not a.startswith("-") and "/" not in a][0]
jobs = [{"job_id": "old-job", "state": "running", "processes": 3}]
answers = {"version": {"ok": True, "version": "0"}, "list": {"ok": True, "jobs": jobs},
           "preflight": {"ok": True, "version": "0", "jobs": jobs},
           "stop": {"ok": True, "job": "old-job", "state": "stopped", "killed": {"7": "TERM"}, "left": [], "none_left": True}}
print(json.dumps(answers[verb]))
"""


def install(workdir: Path, source: str = "") -> None:
    """The agent as staging ships it (its zipapp), or ``source`` in its place (a stand-in of another version)."""
    if not source:
        assert agent_rpc.install_agent(LocalTransport("127.0.0.1"), str(workdir))
        return
    dest = Path(agent_rpc.agent_path(str(workdir)))
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(source.encode())


def test_fresh_node_and_same_version_pass(tmp_path):
    t = LocalTransport("127.0.0.1")
    assert _preflight_node(t, sys.executable, str(tmp_path), force=False) == agent_rpc.NOT_INSTALLED
    install(tmp_path)
    assert _preflight_node(t, sys.executable, str(tmp_path), force=False) == agent_rpc.AGENT_VERSION
    agent_rpc.check_version(t, sys.executable, str(tmp_path))


def test_other_agent_version_is_refused_and_its_running_job_named(tmp_path):
    install(tmp_path, OLD_AGENT)
    t = LocalTransport("127.0.0.1")
    with pytest.raises(agent_rpc.AgentMismatch, match="node agent version 0, this controller needs"):
        agent_rpc.check_version(t, sys.executable, str(tmp_path))
    with pytest.raises(NodeNotFree, match=r"old-job \(running, 3 processes\).*--force"):
        _preflight_node(t, sys.executable, str(tmp_path), force=False)
    assert _preflight_node(t, sys.executable, str(tmp_path), force=True) == "0"  # stopped with its own agent


def test_agent_answer_that_is_not_json_is_a_remote_error(tmp_path):
    install(tmp_path, "print('Traceback: boom')\nraise SystemExit(3)\n")
    from orchestrator.errors import RemoteCommandError

    with pytest.raises(RemoteCommandError, match="exited 3"):
        agent_rpc.installed_version(LocalTransport("127.0.0.1"), sys.executable, str(tmp_path))


def test_a_taken_scheduler_port_is_refused_before_the_start(tmp_path):
    import socket

    t = LocalTransport("127.0.0.1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(NodeNotFree, match=f"127.0.0.1:{port}: Address already in use.*job.sched_port"):
            _preflight_node(t, sys.executable, str(tmp_path), force=False, port=port)
    assert (
        _preflight_node(t, sys.executable, str(tmp_path), force=False, port=port) == agent_rpc.NOT_INSTALLED
    )
