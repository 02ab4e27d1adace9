"""Where the node agent lives on a node, and its verbs run over a transport (``orchestrator.agent.client``).

Layout on a node: ``<workdir>/agent/node_agent.py``, its state under ``<workdir>/agent/jobs/<job_id>/``,
job specs under ``<workdir>/agent/specs/``. A node whose agent answers another version than this
controller's is refused (``AgentMismatch``) rather than driven with the wrong verbs.
"""

from __future__ import annotations

from typing import Any

from orchestrator.agent import client, node_agent
from orchestrator.agent.client import AGENT_FILE, AGENT_VERSION, AgentCommands, AgentMismatch
from orchestrator.errors import RemoteCommandError
from orchestrator.transport import Transport

__all__ = ["AGENT_FILE", "AGENT_VERSION", "AgentMismatch", "NOT_INSTALLED"]
NOT_INSTALLED = "not-installed"


def agent_path(workdir: str) -> str:
    return f"{workdir.rstrip('/')}/agent/node_agent.py"


def agent_workdir(workdir: str) -> str:
    return f"{workdir.rstrip('/')}/agent"


def commands(python: str, workdir: str) -> AgentCommands:
    """The agent's command lines on a node whose work folder is ``workdir``."""
    return AgentCommands(agent_path(workdir), python, agent_workdir(workdir))


def installed_version(t: Transport, python: str, workdir: str) -> str:
    """The version of the agent installed on the node, or ``NOT_INSTALLED`` (one round trip)."""
    res = t.run(commands(python, workdir).version(), timeout=30, check=False)
    if res.exit_code == 2 and "can't open file" in res.stderr:  # how python says the script is missing
        return NOT_INSTALLED
    return str(client.answer(res)["version"])


def check_version(t: Transport, python: str, workdir: str) -> None:
    """AgentMismatch unless the node's installed agent is this controller's version."""
    client.parse_version(t.run(commands(python, workdir).version(), timeout=30, check=False))


def live_jobs(t: Transport, python: str, workdir: str) -> list[dict[str, Any]]:
    """Jobs the installed agent reports as not finished."""
    jobs = client.answer(t.run(commands(python, workdir).list_jobs(), timeout=30, check=False))["jobs"]
    return [j for j in jobs if j["state"] not in client.TERMINAL_STATES]


def status(t: Transport, python: str, workdir: str, job_id: str, lines: int = 20) -> client.JobStatus:
    res = t.run(commands(python, workdir).status(job_id, lines=lines, cpu_sample=0), timeout=10, check=False)
    return client.parse_status(res)


def stop(t: Transport, python: str, workdir: str, job_id: str, grace: float) -> client.StopResult:
    """Stop the job on the node; RemoteCommandError when some of its processes survived."""
    res = t.run(commands(python, workdir).stop(job_id, grace), timeout=grace + 30, check=False)
    return client.parse_stop(res)


def stop_confirmed(t: Transport, python: str, workdir: str, job_id: str, grace: float) -> client.StopResult:
    """``stop``, where a node that never heard of the job counts as clean (nothing of it there)."""
    try:
        return stop(t, python, workdir, job_id, grace)
    except RemoteCommandError as exc:
        if exc.code == node_agent.EXIT_NO_JOB:
            return client.StopResult(job_id, "absent", {}, ())
        raise
