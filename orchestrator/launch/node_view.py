"""One node's part of a job as the controller knows it, rebuilt from its watch stream.

A view starts from the status snapshot a ``hello`` carries (the agent's ``status`` JSON) and applies
each event after it (rank started or exited, progress, result, job state, heartbeat): replaying an
event the snapshot already holds changes nothing, so a reconnect may resend some. ``node_status``
turns a view (or a one-shot ``status`` answer) into the NodeStatus the status file and the live table show.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

from orchestrator.agent import client
from orchestrator.jobs.model import EvalResult, NodeStatus, Progress, RankStatus

Json = dict[str, Any]
EXIT_KEYS = ("pid", "exit_code", "signal", "returncode", "killed_by_agent", "ended", "end_seq", "spawn_error")


def _progress(p: Optional[client.Progress]) -> Optional[Progress]:
    if p is None:
        return None
    return Progress(step=p.global_step, total_steps=p.total_steps, loss=p.loss, per_step_ms=p.per_step_ms,
                    tokens_per_s=p.tokens_per_s, eta_s=p.eta_s)  # fmt: skip


def _result(r: Optional[client.EvalResult]) -> Optional[EvalResult]:
    return EvalResult(r.loss, r.perplexity, r.rows, r.tokens) if r is not None else None


def node_status(host: str, answer: client.JobStatus, now: float, reachable: bool = True,
                error: str = "") -> NodeStatus:  # fmt: skip
    """A NodeStatus from the agent's ``status`` answer (``now``: when it was current)."""
    ranks = tuple(
        RankStatus(
            host=host, name=p.name, rank=p.rank, state=p.state, pid=p.pid, exit_code=p.exit_code,
            signal=p.signal, killed_by_agent=p.killed_by_agent, started=p.started, ended=p.ended,
            cpu_percent=p.cpu_percent, rss_bytes=p.rss_bytes, log=p.log, log_tail=p.log_tail,
            progress=_progress(p.progress), result=_result(p.result),
        )
        for p in answer.processes
    )  # fmt: skip
    return NodeStatus(host, reachable, answer.state, now, error, ranks)


class NodeView:
    """The agent's status JSON of one node, kept current by its events."""

    def __init__(self, host: str):
        self.host = host
        self.data: Optional[Json] = None  # None until the first snapshot

    def snapshot(self, data: Json) -> None:
        self.data = copy.deepcopy(data)

    def _proc(self, name: Any) -> Optional[Json]:
        procs = (self.data or {}).get("processes", [])
        return next((p for p in procs if p["name"] == name), None)

    def apply(self, event: Json) -> None:
        """Apply one event of the stream (see the module docstring)."""
        if self.data is None:
            return
        kind, proc = event.get("kind"), self._proc(event.get("name"))
        if kind == "rank-started" and proc is not None and proc.get("state") != "exited":
            proc.update(pid=event.get("pid"), started=event.get("started"), state="running")
        elif kind == "rank-exited" and proc is not None:
            proc.update({k: event.get(k) for k in EXIT_KEYS if k in event}, state="exited")
            proc.update(cpu_percent=None, rss_bytes=None)
        elif kind in ("progress", "result") and proc is not None:
            proc[kind] = event[kind]
        elif kind == "state":
            self.data.update({k: event.get(k) for k in ("state", "stopping", "root_cause", "ended")})
        elif kind == "heartbeat" and event.get("state"):
            self.data["state"] = event["state"]

    def status(self, now: float, reachable: bool, error: str = "") -> NodeStatus:
        if self.data is None:
            return NodeStatus(self.host, False, "starting", now, error or "not connected yet")
        return node_status(self.host, client.status_from(self.data), now, reachable, error)
