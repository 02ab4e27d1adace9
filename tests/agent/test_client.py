"""The controller side of the agent: specs, command lines, typed answers, against the real agent."""

from __future__ import annotations

import json
import sys
import time

import pytest

from orchestrator.agent import client
from orchestrator.agent.client import AgentCommands, JobSpec, NodeBusy, ProcessSpec
from orchestrator.agent.node import base as node_base
from orchestrator.errors import RemoteCommandError
from orchestrator.transport.base import RunResult
from orchestrator.transport.local import LocalTransport
from tests.agent.conftest import AGENT, DUMMY, AgentHarness


def _rank(rank: int, tmp, *args: str) -> ProcessSpec:
    return ProcessSpec(
        (sys.executable, str(DUMMY), *args), str(tmp / f"rank_{rank}.log"), {"X": "1"}, str(tmp), rank
    )


def test_job_spec_checks_and_serialises(tmp_path):
    with pytest.raises(ValueError, match="duplicate ranks.*empty argv|empty argv.*duplicate ranks"):
        JobSpec("j1", "n1", "/w", (_rank(0, tmp_path), ProcessSpec((), "/l", rank=0)))
    with pytest.raises(ValueError, match="job_id"):
        JobSpec("../x", "n1", "/w", (_rank(0, tmp_path),))
    sched = ProcessSpec(("python", "-c", "pass"), "/l/sched.log")
    data = json.loads(JobSpec("j1", "n1", "/w", (_rank(0, tmp_path),), sched, devices=(0, 1)).to_json())
    assert data["scheduler"] == {
        "argv": ["python", "-c", "pass"],
        "cwd": "",
        "env": {},
        "log": "/l/sched.log",
    }
    assert data["ranks"][0]["rank"] == 0 and data["devices"] == [0, 1]
    assert data["agent_version"] == node_base.AGENT_VERSION


def test_agent_commands_are_argv_lists():
    cmds = AgentCommands(
        "/opt/a b/orchestrate-agent-0123456789ab.pyz", python="/usr/bin/python3.9", workdir="/var/o"
    )
    assert cmds.start("/s.json", force=True) == [
        "/usr/bin/python3.9", "-S", "/opt/a b/orchestrate-agent-0123456789ab.pyz", "--workdir", "/var/o", "start", "--spec", "/s.json", "--force",
    ]  # fmt: skip
    assert cmds.stop("j", 2.5)[-5:] == ["stop", "--job", "j", "--grace", "2.5"]
    assert cmds.check_devices([0, 3], wait=5)[-4:] == ["--devices", "0,3", "--wait", "5"]
    assert cmds.stop("j", 2.5, release_wait=4)[-2:] == ["--release-wait", "4"]


def test_garbage_and_errors_raise_remote_command_error():
    with pytest.raises(RemoteCommandError, match="exited 1"):
        client.answer(
            RunResult("n1", "python3 orchestrate-agent.pyz status", 1, "Traceback ...", "boom", 0.1)
        )
    bad = json.dumps({"ok": False, "error": "no job x on this node", "exit_code": 6})
    with pytest.raises(RemoteCommandError, match="no job x"):
        client.parse_status(RunResult("n1", "status", 6, bad, "", 0.1))
    with pytest.raises(client.AgentMismatch, match="version 0"):
        client.parse_version(RunResult("n1", "version", 0, '{"ok": true, "version": "0"}', "", 0.1))


def test_through_the_local_transport(agent: AgentHarness, tmp_path):
    node, env = LocalTransport("n1"), {node_base.ENV_SCOPE: agent.scope}
    cmds = AgentCommands(str(AGENT), python=sys.executable, workdir=str(agent.workdir))
    assert client.parse_version(node.run(cmds.version(), check=False, env=env)) == client.AGENT_VERSION

    def start(job: str, *ranks: ProcessSpec) -> RunResult:
        spec = tmp_path / f"{job}.json"
        spec.write_text(JobSpec(job, "n1", str(agent.workdir), ranks, grace_s=1, seq_length=32).to_json())
        return node.run(cmds.start(str(spec)), check=False, env=env)

    started = client.parse_start(start("ok", _rank(0, tmp_path, "--sleep", "60", "--steps", "2")))
    assert started.job_id == "ok" and started.processes[0].pid > 0
    with pytest.raises(NodeBusy) as busy:
        client.parse_start(start("second", _rank(0, tmp_path, "--sleep", "60")))
    assert {c.pid for c in busy.value.conflicts} >= {started.supervisor_pid, started.processes[0].pid}
    assert "job ok" in str(busy.value)

    for _ in range(100):
        status = client.parse_status(node.run(cmds.status("ok", lines=3, cpu_sample=0), check=False, env=env))
        if status.processes[0].progress:
            break
        time.sleep(0.05)
    assert status.state == "running" and not status.is_terminal and status.root_cause is None
    assert status.processes[0].cpu_percent >= 0 and status.processes[0].rss_bytes > 1_000_000
    assert (
        status.processes[0].progress.global_step == 2 and status.processes[0].progress.tokens_per_s == 256.0
    )

    stopped = client.parse_stop(node.run(cmds.stop("ok", grace=1), check=False, env=env))
    assert (
        stopped.state == "stopped"
        and stopped.left == ()
        and stopped.killed[started.processes[0].pid] == "TERM"
    )
    final = client.parse_status(node.run(cmds.status("ok"), check=False, env=env))
    assert final.is_terminal and final.processes[0].exit_code == 143 and final.processes[0].killed_by_agent
