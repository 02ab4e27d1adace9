"""The watch loop: poll every node's agent in parallel, write snapshots, fail fast, name the root cause.

Each node is polled in its own worker (one request in flight per node, over a kept-open connection),
so a silent node never delays the others. Every ``poll_s`` the latest answers are assessed:
- any rank exiting non-zero, or an agent reporting its job failed or lost, fails the job;
- a node that has not answered for longer than the plan's failure-detection time fails the job;
then every rank on every node that still answers is stopped at once (TERM, a short grace, KILL), the
root cause is named (``jobs.rootcause``) and the job is marked failed, or RESTARTING when it may make
another attempt (``--max-restarts``: the supervisor then relaunches it). A stop asked by the user
(``stop-requested`` in the state folder) ends the loop without acting: ``launch.stop`` owns it.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from orchestrator.agent import client
from orchestrator.agent.client import release_note
from orchestrator.jobs.attempts import load_attempts
from orchestrator.jobs.events import append_event
from orchestrator.jobs.model import (
    EvalResult,
    JobState,
    JobStatus,
    NodeStatus,
    Progress,
    RankStatus,
    RootCause,
    job_result,
)
from orchestrator.jobs.rootcause import pick_root_cause
from orchestrator.jobs.state import JobDir
from orchestrator.launch import agent_rpc
from orchestrator.launch.nodes import JobNodes
from orchestrator.launch.spec import FAIL_FAST_GRACE_S

LOG_LINES = 20


def _progress(p: Optional[client.Progress]) -> Optional[Progress]:
    if p is None:
        return None
    return Progress(step=p.global_step, total_steps=p.total_steps, loss=p.loss, per_step_ms=p.per_step_ms,
                    tokens_per_s=p.tokens_per_s, eta_s=p.eta_s)  # fmt: skip


def _result(r: Optional[client.EvalResult]) -> Optional[EvalResult]:
    return EvalResult(r.loss, r.perplexity, r.rows, r.tokens) if r is not None else None


def node_status(host: str, answer: client.JobStatus, now: float) -> NodeStatus:
    """A NodeStatus from the agent's ``status`` answer."""
    ranks = tuple(
        RankStatus(
            host=host, name=p.name, rank=p.rank, state=p.state, pid=p.pid, exit_code=p.exit_code,
            signal=p.signal, killed_by_agent=p.killed_by_agent, started=p.started, ended=p.ended,
            cpu_percent=p.cpu_percent, rss_bytes=p.rss_bytes, log=p.log, log_tail=p.log_tail,
            progress=_progress(p.progress), result=_result(p.result),
        )
        for p in answer.processes
    )  # fmt: skip
    return NodeStatus(host, True, answer.state, now, "", ranks)


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


class Monitor:
    """Watches one job until it ends (``run``); ``step`` is one assessment round."""

    def __init__(self, job: JobDir, nodes: Optional[JobNodes] = None, poll_s: float = 1.0):
        self.job, self.record = job, job.record()
        self.own_nodes = nodes is None
        self.nodes = nodes or JobNodes(self.record.nodes)
        self.poll_s = poll_s
        now = time.time()
        self.latest = {h: NodeStatus(h, False, "starting", now, "not polled yet") for h in self.nodes.hosts}
        self.checked: set[str] = set()
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(32, len(self.nodes.hosts))))
        self.inflight: dict[str, Future] = {}
        prev = job.status()
        self.started = prev.started if prev and prev.started else self.record.created
        attempts = load_attempts(job)
        cur = attempts.current
        self.restartable = attempts.left > 0
        self.attempt_info = {"attempt": len(attempts.attempts), "max_attempts": attempts.max_attempts,
                             "resumed_from": cur.resumed_from if cur else None,
                             "logs_index": prev.logs_index if prev else None}  # fmt: skip

    # -- polling ----------------------------------------------------------------------------------
    def _poll(self, host: str) -> NodeStatus:
        spec = self.nodes.node(host)
        t = self.nodes.pool.get(spec)
        if host not in self.checked:
            agent_rpc.check_version(t, spec.python, spec.workdir)
            self.checked.add(host)
        answer = agent_rpc.status(t, spec.python, spec.workdir, self.job.job_id, LOG_LINES)
        return node_status(host, answer, time.time())

    def _absorb(self, host: str, fut: Future) -> None:
        exc = fut.exception()
        if exc is None:
            self.latest[host] = fut.result()
        else:
            if isinstance(exc, agent_rpc.AgentMismatch):
                raise exc
            prev = self.latest[host]
            self.latest[host] = replace(prev, reachable=False, error=str(exc).splitlines()[0])

    def refresh(self, timeout: float) -> list[NodeStatus]:
        """Ask every node without a request in flight; absorb the answers that arrive within ``timeout``."""
        for host in self.nodes.hosts:
            if host not in self.inflight:
                self.inflight[host] = self.pool.submit(self._poll, host)
        wait(list(self.inflight.values()), timeout=timeout)
        for host, fut in list(self.inflight.items()):
            if fut.done():
                del self.inflight[host]
                self._absorb(host, fut)
        return [self.latest[h] for h in self.nodes.hosts]

    # -- acting -----------------------------------------------------------------------------------
    def snapshot(self, state: JobState, cause: Optional[RootCause] = None, message: str = "") -> JobStatus:
        """The job now; an eval's result (its lowest rank's) is in ``result`` and, once it succeeded, in
        the message the status view prints."""
        nodes = tuple(self.latest[h] for h in self.nodes.hosts)
        ended = time.time() if state.is_terminal() else None
        result = job_result(nodes)
        if result is not None and state == JobState.SUCCEEDED:
            message = f"{message}; {result}" if message else str(result)
        return JobStatus(self.job.job_id, self.record.task, state, time.time(), self.started, ended, nodes,
                         cause, message, **self.attempt_info, result=result)  # fmt: skip

    def fail_fast(self, verdict: Assessment) -> JobStatus:
        """Stop every rank on every answering node, then record the failure and its root cause."""
        cause = pick_root_cause(self.latest.values(), verdict.lost)
        append_event(self.job.path, "failure-detected", reason=verdict.reason, root_cause=str(cause))
        self.job.save_status(self.snapshot(JobState.STOPPING, cause, f"fail-fast: {verdict.reason}"))
        answering = [h for h in self.nodes.hosts if h not in verdict.lost]
        stopped = self._stop(answering)
        append_event(self.job.path, "fail-fast-stopped", hosts=answering,
                     none_left={h: not r.left for h, r in stopped.results.items()},
                     npus={h: release_note(r.release) for h, r in stopped.results.items()},
                     errors={h: str(e) for h, e in stopped.failures.items()})  # fmt: skip
        final_poll = self.nodes.fan(lambda t: self._poll(t.host), answering)  # fresh, after the stop
        self.latest.update(final_poll.results)
        final = [self.latest[h] for h in answering]
        cause = pick_root_cause(final + [self.latest[h] for h in verdict.lost], verdict.lost) or cause
        note = f"; {', '.join(verdict.lost)} unreachable: its processes may still run" if verdict.lost else ""
        info = self.attempt_info
        if self.restartable:
            state, what = JobState.RESTARTING, f"attempt {info['attempt']}/{info['max_attempts']} failed"
        else:
            state, what = JobState.FAILED, "failed"
        status = self.snapshot(state, cause, f"{what}: {verdict.reason}{note}")
        self.job.save_status(status)
        append_event(
            self.job.path, "failed", root_cause=str(cause), attempt=info["attempt"], restart=self.restartable
        )
        if verdict.lost:
            self._stop(list(verdict.lost))  # best effort: the node may be back
        return status

    def _stop(self, hosts: list[str]) -> Any:
        """Stop the job on ``hosts``; each agent then waits for the job's NPUs to be released."""

        def one(t: Any) -> Any:
            spec = self.nodes.node(t.host)
            return agent_rpc.stop_confirmed(t, spec.python, spec.workdir, self.job.job_id, FAIL_FAST_GRACE_S)

        return self.nodes.fan(one, hosts)

    def step(self) -> Optional[JobStatus]:
        """One round: poll, assess, act; the snapshot (None when a user stop took over)."""
        nodes = self.refresh(timeout=self.poll_s)
        if self.job.stop_requested():
            return None
        verdict = assess(nodes, time.time(), self.record.failure_detect_s)
        if verdict.state == JobState.FAILED:
            return self.fail_fast(verdict)
        status = self.snapshot(verdict.state, message=verdict.reason)
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
                t0 = time.monotonic()
                status = self.step()
                if status is None or status.state.is_terminal() or status.state == JobState.RESTARTING:
                    return status
                if on_status:
                    on_status(status)
                time.sleep(max(0.0, self.poll_s - (time.monotonic() - t0)))
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)
            if self.own_nodes:
                self.nodes.close()
