"""Where the node agent lives on a node, and its verbs run over a transport (``orchestrator.agent.client``).

Layout on a node: the agent as one zipapp, ``<workdir>/agent/orchestrate-agent-<sha12>.pyz``
(``orchestrator.agent.bundle``: the name says which build it is, so it is written only when missing),
unpacked by its first run into ``<workdir>/agent/orchestrate-agent-<sha12>/`` (where Python caches its
bytecode), its state under ``<workdir>/agent/jobs/<job_id>/``, job specs under ``<workdir>/agent/specs/``. A node whose agent answers another version than this
controller's is refused (``AgentMismatch``) rather than driven with the wrong verbs.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from orchestrator.agent import client
from orchestrator.agent.bundle import agent_bundle
from orchestrator.agent.client import AGENT_VERSION, AgentCommands, AgentMismatch
from orchestrator.agent.node import base as node_base
from orchestrator.errors import RemoteCommandError
from orchestrator.transport import RunResult, Stream, Transport

__all__ = ["AGENT_VERSION", "AgentMismatch", "NOT_INSTALLED"]
NOT_INSTALLED = "not-installed"


def agent_path(workdir: str) -> str:
    return f"{agent_workdir(workdir)}/{agent_bundle().name}"


def agent_workdir(workdir: str) -> str:
    return f"{workdir.rstrip('/')}/agent"


def install_agent(t: Transport, workdir: str) -> bool:
    """The agent zipapp on the node, written only when missing (one check, then at most one atomic
    write); True when it was written."""
    path = agent_path(workdir)
    if t.run(["test", "-f", path], timeout=30, check=False).exit_code == 0:
        return False
    t.put_bytes(agent_bundle().data, path, mode=0o644)
    return True


def stage(t: Transport, python: str, workdir: str, bundle: bytes) -> dict[str, Any]:
    """Write a job's small files on the node from ``bundle`` (the agent's ``stage`` verb, one round trip);
    the agent is installed first where it is missing (then it is two more)."""
    argv = commands(python, workdir).stage()
    res = t.run(argv, stdin=bundle, timeout=60, check=False)
    if _missing(res):  # python just said the file is not there: write it without asking again
        t.put_bytes(agent_bundle().data, agent_path(workdir), mode=0o644)
        res = t.run(argv, stdin=bundle, timeout=60, check=False)
    return client.answer(res)


class StagingSession:
    """The agent's ``preflight --then-stage`` running on one node (opened with the CANN probe:
    ``node_env.open_after``): its preflight answer, then at most one ``stage`` bundle on the same SSH
    session, so a launch costs each node one agent process and one session."""

    def __init__(self, host: str, stream: Stream, command: str):
        self.host, self.stream, self.command = host, stream, command
        self.closed = False

    def _result(self, line: bytes, timeout: float) -> RunResult:
        """The RunResult of an answer ``line``, or of the agent's end when it printed none."""
        if line.strip():
            return RunResult(self.host, self.command, 0, line.decode(errors="replace"), "", 0.0)
        end = self.stream.wait(timeout)
        self.closed = True
        self.stream.close()
        out, err = end.stdout.decode(errors="replace"), end.stderr.decode(errors="replace")
        return RunResult(self.host, self.command, end.exit_code, out, err, 0.0)

    def preflight(self, timeout: float = 30) -> RunResult:
        """The preflight answer (an ended agent's outcome when it gave none: not installed, crashed)."""
        return self._result(self.stream.readline(timeout), timeout)

    def stage(self, bundle: bytes, timeout: float = 60) -> dict[str, Any]:
        """Send the ``stage`` bundle; the agent's answer (``client.answer``: NodeBusy and the like raise)."""
        self.stream.write(bundle.replace(b"\n", b" ") + b"\n")  # one line (JSON escapes its own newlines)
        line = self.stream.readline(timeout)
        try:
            end = self.stream.wait(timeout)
        finally:
            self.close()
        err = end.stderr.decode(errors="replace")
        text = (line + end.stdout).decode(errors="replace")
        return client.answer(RunResult(self.host, self.command, end.exit_code, text, err, 0.0))

    def close(self) -> None:
        """End the session: an agent still waiting for a bundle sees its stdin end and stages nothing."""
        if not self.closed:
            self.closed = True
            try:
                self.stream.close_stdin()
                self.stream.wait(10)
            except Exception:  # noqa: BLE001 - best effort: closing the stream ends the command anyway
                pass
            self.stream.close()


def _missing(res: Any) -> bool:
    """How python says the agent's file is not there."""
    return res.exit_code == 2 and "can't open file" in res.stderr


def commands(python: str, workdir: str) -> AgentCommands:
    """The agent's command lines on a node whose work folder is ``workdir``."""
    return AgentCommands(agent_path(workdir), python, agent_workdir(workdir))


def installed_version(t: Transport, python: str, workdir: str) -> str:
    """The version of the agent installed on the node, or ``NOT_INSTALLED`` (one round trip)."""
    res = t.run(commands(python, workdir).version(), timeout=30, check=False)
    if _missing(res):
        return NOT_INSTALLED
    return str(client.answer(res)["version"])


def preflight_answer(res: Any) -> tuple[str, list[dict[str, Any]]]:
    """From the agent's ``preflight`` answer: its version (``NOT_INSTALLED`` when the node lacks this
    build) and the jobs it reports as not finished."""
    if _missing(res):
        return NOT_INSTALLED, []
    data = client.answer(res)
    jobs = data.get("jobs", [])
    return str(data["version"]), [j for j in jobs if j["state"] not in client.TERMINAL_STATES]


def free_port(res: Any) -> Optional[int]:
    """The free port a ``preflight --free-port`` answer names (None when it names none)."""
    try:
        port = client.answer(res).get("free_port")
    except (RemoteCommandError, ValueError):
        return None
    return int(port) if port else None


def check_version(t: Transport, python: str, workdir: str) -> None:
    """AgentMismatch unless the node's installed agent is this controller's version."""
    client.parse_version(t.run(commands(python, workdir).version(), timeout=30, check=False))


def status(t: Transport, python: str, workdir: str, job_id: str, lines: int = 20) -> client.JobStatus:
    res = t.run(commands(python, workdir).status(job_id, lines=lines, cpu_sample=0), timeout=10, check=False)
    return client.parse_status(res)


def stop(t: Transport, python: str, workdir: str, job_id: str, grace: float,
         release_wait: Optional[float] = None) -> client.StopResult:  # fmt: skip
    """Stop the job on the node, then wait for its NPUs' release (at most ``release_wait`` s, default the
    job spec's); RemoteCommandError when some of its processes survived."""
    wait = node_base.RELEASE_WAIT_S if release_wait is None else release_wait
    argv = commands(python, workdir).stop(job_id, grace, release_wait)
    return client.parse_stop(t.run(argv, timeout=grace + wait + 60, check=False))


def stop_confirmed(t: Transport, python: str, workdir: str, job_id: str, grace: float,
                   release_wait: Optional[float] = None) -> client.StopResult:  # fmt: skip
    """``stop``, where a node that never heard of the job counts as clean (nothing of it there)."""
    try:
        return stop(t, python, workdir, job_id, grace, release_wait)
    except RemoteCommandError as exc:
        if exc.code == node_base.EXIT_NO_JOB:
            return client.StopResult(job_id, "absent", {}, ())
        raise


def check_devices(
    t: Transport, python: str, workdir: str, devices: Sequence[int], wait: float
) -> client.DeviceCheck:
    """The node's ``devices`` free of any process npu-smi lists, waiting at most ``wait`` s for exited
    ones to be released; ``NodeBusy`` naming what holds them otherwise."""
    argv = commands(python, workdir).check_devices(devices, wait)
    return client.parse_check_devices(t.run(argv, timeout=wait + 60, check=False))
