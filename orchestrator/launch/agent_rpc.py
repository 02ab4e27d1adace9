"""Calling the node agent over a transport: one verb, one JSON answer (``orchestrator/agent/node_agent.py``).

Where the agent lives on a node: ``<workdir>/agent/node_agent.py``, its state under
``<workdir>/agent/jobs/<job_id>/``. The controller's agent version is ``AGENT_VERSION``; a node whose
agent answers another version is refused (``AgentMismatch``) rather than driven with the wrong verbs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.agent import node_agent
from orchestrator.errors import OrchestrateError, RemoteCommandError
from orchestrator.transport import Transport

AGENT_SOURCE = Path(node_agent.__file__)
AGENT_VERSION = node_agent.AGENT_VERSION
NOT_INSTALLED = "not-installed"


class AgentError(OrchestrateError, RuntimeError):
    """The agent on a node refused or failed; carries its JSON answer."""

    exit_code = 5

    def __init__(self, host: str, verb: str, answer: dict[str, Any]):
        self.host, self.verb, self.answer = host, verb, answer
        super().__init__(f"{host}: agent {verb}: {answer.get('error') or answer}")


class AgentMismatch(AgentError):
    """A node runs another agent version than this controller ships."""


def agent_path(workdir: str) -> str:
    return f"{workdir.rstrip('/')}/agent/node_agent.py"


def agent_workdir(workdir: str) -> str:
    return f"{workdir.rstrip('/')}/agent"


def call(t: Transport, python: str, workdir: str, verb: str, *args: str, timeout: float = 30,
         check: bool = True) -> dict[str, Any]:  # fmt: skip
    """Run ``node_agent.py <verb> args`` on the node; its JSON answer (AgentError when not ok and ``check``)."""
    argv = [python, agent_path(workdir), "--workdir", agent_workdir(workdir), verb, *args]
    res = t.run(argv, timeout=timeout, check=False)
    try:
        answer = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RemoteCommandError(t.host, res.command, res.exit_code, res.stdout, res.stderr) from None
    if check and not answer.get("ok"):
        raise AgentError(t.host, verb, answer)
    return answer


def installed_version(t: Transport, python: str, workdir: str) -> str:
    """The version of the agent installed on the node, or ``NOT_INSTALLED`` (one round trip)."""
    res = t.run([python, agent_path(workdir), "version"], timeout=30, check=False)
    if res.exit_code == 2 and "can't open file" in res.stderr:  # how python says the script is missing
        return NOT_INSTALLED
    try:
        return str(json.loads(res.stdout.strip().splitlines()[-1])["version"])
    except (ValueError, IndexError, KeyError, TypeError):
        raise RemoteCommandError(t.host, res.command, res.exit_code, res.stdout, res.stderr) from None


def check_version(t: Transport, python: str, workdir: str) -> None:
    """AgentMismatch unless the node's installed agent is this controller's version."""
    found = installed_version(t, python, workdir)
    if found != AGENT_VERSION:
        raise AgentMismatch(t.host, "version", {
            "error": f"the node's agent is version {found}, this controller ships {AGENT_VERSION}; "
                     "use the orchestrate that launched the job, or stop it and launch again",
        })  # fmt: skip


def live_jobs(t: Transport, python: str, workdir: str) -> list[dict[str, Any]]:
    """Jobs the installed agent reports as not finished."""
    jobs = call(t, python, workdir, "list", timeout=30)["jobs"]
    return [j for j in jobs if j["state"] not in ("succeeded", "failed", "stopped")]
