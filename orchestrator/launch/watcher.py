"""The controller-side watcher: one kept-open watch stream per node, fail fast on events, name the root cause.

Every node's events arrive as they happen over its ``NodeChannel`` (rank started/exited, progress,
job state, heartbeats) and rebuild that node's ``NodeView``; status.json is written from the views.
Each event that may end the job is assessed at once (``assess``):
- any rank exiting non-zero, or an agent reporting its job failed or lost, fails the job;
- a node silent (no event, no heartbeat) for longer than the plan's failure-detection time fails it;
then ``stop`` goes out on every node's channel at once (TERM, a short grace, KILL), the root cause is
named (``jobs.rootcause``) and the job is marked failed, or RESTARTING when it may make another attempt
(``--max-restarts``: the watch process then relaunches it). A dropped channel reconnects by itself and
resumes after the last event it got. A stop asked by the user (``stop-requested`` in the state folder)
ends the loop without acting: ``launch.stop`` owns it.
"""

from __future__ import annotations

import queue
import time
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any, Callable, Optional

from orchestrator.agent import client
from orchestrator.agent.client import release_note
from orchestrator.errors import RemoteCommandError
from orchestrator.jobs.attempts import load_attempts
from orchestrator.jobs.events import append_event
from orchestrator.jobs.model import JobState, JobStatus, NodeStatus, RootCause, job_result
from orchestrator.jobs.rootcause import pick_root_cause
from orchestrator.jobs.state import JobDir
from orchestrator.launch import agent_rpc
from orchestrator.launch.node_channel import NodeChannel
from orchestrator.launch.node_view import NodeView, node_status
from orchestrator.launch.nodes import JobNodes
from orchestrator.launch.spec import FAIL_FAST_GRACE_S

__all__ = ["Assessment", "Watcher", "assess", "node_status"]
LOG_LINES = 20
REFRESH_S = 30.0  # a full status (CPU %, memory, log tails) is asked of every node this often
URGENT = ("rank-exited", "state", "down", "hello", "snapshot")  # events assessed as soon as they arrive


@dataclass(frozen=True)
class Assessment:
    state: JobState
    lost: tuple[str, ...]
    reason: str


def assess(nodes: list[NodeStatus], now: float, failure_detect_s: float) -> Assessment:
    """What the latest node statuses mean for the job (pure: the unit of the fail-fast rules)."""
    lost = tuple(
        n.host
        for n in nodes
        if not n.reachable and now - (now if n.last_seen is None else n.last_seen) > failure_detect_s
    )
    if lost:
        return Assessment(JobState.FAILED, lost, f"node(s) {', '.join(lost)} not answering")
    for n in nodes:
        bad = [r for r in n.ranks if r.failed and not r.killed_by_agent]
        if bad:
            return Assessment(JobState.FAILED, (), f"{bad[0].name} on {n.host} exited {bad[0].exit_code}")
        if n.reachable and n.agent_state in ("failed", "unknown", "stopped"):
            return Assessment(JobState.FAILED, (), f"the agent on {n.host} reports the job {n.agent_state}")
    if nodes and all(n.agent_state == "succeeded" for n in nodes):
        return Assessment(JobState.SUCCEEDED, (), "every process exited 0")
    return Assessment(JobState.RUNNING, (), "")


class Watcher:
    """Watches one job until it ends (``run``); ``step`` is one round: wait for events, assess, act."""

    def __init__(self, job: JobDir, nodes: Optional[JobNodes] = None, poll_s: float = 1.0,
                 settle: Optional[Callable[[JobStatus], JobStatus]] = None):  # fmt: skip
        """``settle`` may restate a failure before it is recorded (a scheduler's own cause, e.g. Slurm's
        time limit), so that nobody reading status.json sees a cause that is replaced a moment later."""
        self.job, self.record = job, job.record()
        self.settle = settle
        self.own_nodes = nodes is None
        self.nodes = nodes or JobNodes(self.record.nodes)
        self.poll_s = poll_s
        self.inbox: queue.Queue = queue.Queue()
        self.views = {h: NodeView(h) for h in self.nodes.hosts}
        self.errors: dict[str, str] = {}
        self.opened = time.time()
        self.channels: dict[str, NodeChannel] = {}
        self.closed = False
        self.last_refresh = time.monotonic()
        self.quiet_s = 3 * max(0.2, float(self.record.heartbeat_s)) + 2.0
        prev = job.status()
        self.started = prev.started if prev and prev.started else self.record.created
        attempts = load_attempts(job)
        cur = attempts.current
        self.restartable = attempts.left > 0
        self.attempt_info = {"attempt": len(attempts.attempts), "max_attempts": attempts.max_attempts,
                             "resumed_from": cur.resumed_from if cur else None,
                             "logs_index": prev.logs_index if prev else None}  # fmt: skip

    # -- the channels -----------------------------------------------------------------------------
    def _opener(self, host: str) -> Callable[[int], Any]:
        spec = self.nodes.node(host)
        argv = agent_rpc.commands(spec.python, spec.workdir)
        beat = max(0.2, float(self.record.heartbeat_s))

        def open_stream(after: int) -> Any:
            return self.nodes.pool.get(spec).open_stream(argv.watch(self.job.job_id, after, beat))

        return open_stream

    def open(self) -> Watcher:
        """Start every node's channel (each connects in its own thread)."""
        for host in self.nodes.hosts if not self.closed else ():
            if host not in self.channels:
                self.channels[host] = NodeChannel(host, self._opener(host), self.inbox).start()
        return self

    def close(self) -> None:
        """Close every channel (a ``run`` in another thread then returns its last snapshot)."""
        self.closed = True
        for channel in self.channels.values():
            channel.close()
        self.channels = {}
        if self.own_nodes:
            self.nodes.close()

    @property
    def latest(self) -> dict[str, NodeStatus]:
        """Every node now: reachable while its channel is up and it was heard within three heartbeats (at
        most the failure-detection time: a node missing its heartbeats that long is lost)."""
        now, quiet = time.time(), min(self.quiet_s, float(self.record.failure_detect_s))
        out = {}
        for host, view in self.views.items():
            ch = self.channels.get(host)
            seen = ch.last_seen if ch and ch.last_seen else None
            fresh = bool(ch and ch.connected and seen and now - seen <= quiet)
            status = view.status(seen or self.opened, fresh, "" if fresh else self.errors.get(host, "silent"))
            out[host] = status
        return out

    def _absorb(self, host: str, message: dict[str, Any]) -> None:
        kind = message["kind"]
        if kind in ("hello", "snapshot"):
            self.views[host].snapshot(message["snapshot"])
            self.errors.pop(host, None)
        elif kind == "down":
            self.errors[host] = message.get("error", "disconnected")
            if "invalid choice: 'watch'" in self.errors[host]:
                raise agent_rpc.AgentMismatch(
                    f"{host}: the node agent there has no watch stream: {self.errors[host]}"
                )
        else:
            self.views[host].apply(message)

    def next_deadline(self) -> float:
        """Seconds until the first silent node passes the failure-detection time (inf: none heard yet)."""
        detect = float(self.record.failure_detect_s)
        seen = [ch.last_seen or self.opened for ch in self.channels.values()]
        return min((s + detect - time.time() for s in seen), default=float("inf"))

    def drain(self, timeout: float) -> None:
        """Absorb events until ``timeout`` passed, one arrived that may end the job, or a silent node is
        due to be declared lost (missed heartbeats are acted on when due, not at the next poll)."""
        timeout = max(0.0, min(timeout, self.next_deadline() + 0.01))
        deadline = time.monotonic() + timeout
        while True:
            try:
                host, message = self.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            self._absorb(host, message)
            if message["kind"] in URGENT:
                while True:  # whatever else is already here, then assess
                    try:
                        self._absorb(*self.inbox.get_nowait())
                    except queue.Empty:
                        return

    def ask(self, op: str, hosts: list[str], timeout: float, **args: Any) -> dict[str, Future]:
        """Send ``op`` to ``hosts`` at once; their Futures, done (or failed) within ``timeout``."""
        futures = {h: self.channels[h].request(op, **args) for h in hosts if h in self.channels}
        wait(list(futures.values()), timeout=timeout)
        return futures

    def refresh(self, timeout: float = 10.0, hosts: Optional[list[str]] = None) -> list[NodeStatus]:
        """A full status of every connected node (one round trip on each channel, all at once)."""
        asked = list(self.nodes.hosts) if hosts is None else hosts
        futures = self.ask("status", asked, timeout, lines=LOG_LINES, cpu_sample=0)
        for host, fut in futures.items():
            if fut.done() and fut.exception() is None:
                self.views[host].snapshot(fut.result())
        self.last_refresh = time.monotonic()
        latest = self.latest
        return [latest[h] for h in self.nodes.hosts]

    # -- acting -----------------------------------------------------------------------------------
    def snapshot(self, state: JobState, cause: Optional[RootCause] = None, message: str = "",
                 latest: Optional[dict[str, NodeStatus]] = None) -> JobStatus:  # fmt: skip
        """The job now (``latest``: the nodes' statuses when already built); an eval's result (its lowest
        rank's) is in ``result`` and, once it succeeded, in the message the status view prints."""
        latest = self.latest if latest is None else latest
        nodes = tuple(latest[h] for h in self.nodes.hosts)
        ended = time.time() if state.is_terminal() else None
        result = job_result(nodes)
        if result is not None and state == JobState.SUCCEEDED:
            message = f"{message}; {result}" if message else str(result)
        return JobStatus(self.job.job_id, self.record.task, state, time.time(), self.started, ended, nodes,
                         cause, message, **self.attempt_info, result=result)  # fmt: skip

    def stop_nodes(
        self, hosts: list[str], timeout: float
    ) -> tuple[dict[str, client.StopResult], dict[str, str]]:
        """Stop the job on ``hosts`` at once over their channels (a one-shot command where a channel is
        down); the agents do not wait for the NPUs' release (a restart waits for it: ``restart``)."""
        futures = self.ask("stop", hosts, timeout, grace=FAIL_FAST_GRACE_S, release_wait=0.0)
        results, errors, retry = {}, {}, []
        for host in hosts:
            fut = futures.get(host)
            if fut is None or not fut.done():
                errors[host] = "no answer to stop"
            elif fut.exception() is None:
                results[host] = client.stop_from(fut.result())
            elif isinstance(fut.exception(), RemoteCommandError):
                errors[host] = str(fut.exception()).splitlines()[0]
            else:
                retry.append(host)
        if retry:

            def one(t: Any) -> client.StopResult:
                spec = self.nodes.node(t.host)
                return agent_rpc.stop_confirmed(
                    t, spec.python, spec.workdir, self.job.job_id, FAIL_FAST_GRACE_S, release_wait=0.0
                )

            res = self.nodes.fan(one, retry)
            results.update(res.results)
            errors.update({h: str(e).splitlines()[0] for h, e in res.failures.items()})
        return results, errors

    def fail_fast(self, verdict: Assessment) -> JobStatus:
        """Record the failure and its root cause, stop every rank on every answering node at once, then
        record the final state of every rank."""
        cause = pick_root_cause(self.latest.values(), verdict.lost)
        append_event(self.job.path, "failure-detected", reason=verdict.reason, root_cause=str(cause))
        self.job.save_status(self.snapshot(JobState.STOPPING, cause, f"fail-fast: {verdict.reason}"))
        answering = [h for h in self.nodes.hosts if h not in verdict.lost]
        stopped, errors = self.stop_nodes(answering, timeout=FAIL_FAST_GRACE_S + 60)
        append_event(self.job.path, "fail-fast-stopped", hosts=answering,
                     none_left={h: not r.left for h, r in stopped.items()},
                     npus={h: release_note(r.release) for h, r in stopped.items()}, errors=errors)  # fmt: skip
        final = self.refresh(timeout=15.0, hosts=answering)  # fresh, after the stop
        cause = pick_root_cause(final, verdict.lost) or cause
        note = f"; {', '.join(verdict.lost)} unreachable: its processes may still run" if verdict.lost else ""
        info = self.attempt_info
        if self.restartable:
            state, what = JobState.RESTARTING, f"attempt {info['attempt']}/{info['max_attempts']} failed"
        else:
            state, what = JobState.FAILED, "failed"
        status = self.snapshot(state, cause, f"{what}: {verdict.reason}{note}")
        if self.settle is not None:
            status = self.settle(status)
        self.job.save_status(status)
        append_event(self.job.path, "failed", root_cause=str(status.root_cause), attempt=info["attempt"],
                     restart=status.state == JobState.RESTARTING)  # fmt: skip
        if verdict.lost:
            self.ask(
                "stop", list(verdict.lost), 0.0, grace=FAIL_FAST_GRACE_S
            )  # sent, not awaited: it may be back
        return status

    def step(self) -> Optional[JobStatus]:
        """One round: events (up to ``poll_s``), assess, act; the snapshot (None when a user stop took over)."""
        self.open()
        self.drain(self.poll_s)
        if time.monotonic() - self.last_refresh > REFRESH_S:
            self.refresh()
        if self.job.stop_requested():
            return None
        latest = self.latest
        verdict = assess([latest[h] for h in self.nodes.hosts], time.time(), self.record.failure_detect_s)
        if verdict.state == JobState.FAILED:
            return self.fail_fast(verdict)
        status = self.snapshot(verdict.state, message=verdict.reason, latest=latest)
        self.job.save_status(status)
        if status.state.is_terminal():
            extra = {"result": vars(status.result)} if status.result else {}
            append_event(self.job.path, status.state.value, attempt=self.attempt_info["attempt"], **extra)
        return status

    def run(self, on_status: Optional[Callable[[JobStatus], None]] = None) -> Optional[JobStatus]:
        """Watch until the job ends (or a user stop takes over); the last snapshot."""
        status = None
        try:
            while True:
                status = self.step()
                if (
                    self.closed
                    or status is None
                    or status.state.is_terminal()
                    or status.state == JobState.RESTARTING
                ):
                    return status
                if on_status:
                    on_status(status)
        finally:
            if not self.closed:
                self.close()
