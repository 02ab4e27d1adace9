"""Stopping a job on every node at once, and confirming that nothing of it is left anywhere.

Order: mark ``stop-requested`` (the watcher then stands down), take the job's control lock (a relaunch
under way finishes starting first, ``jobs.lock``), wait for the watch process to exit, ask
every node's agent to stop the job (TERM each process group, grace, KILL, then it checks the node
for survivors and waits, bounded, until npu-smi no longer lists a process of the job on its NPUs), and
record the outcome. Nodes that do not answer are named; the job is then not confirmed stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from orchestrator.agent.client import NpuRelease, release_note
from orchestrator.errors import OrchestrateError
from orchestrator.jobs.events import append_event
from orchestrator.jobs.lock import control_lock
from orchestrator.jobs.model import JobState, JobStatus, NodeStatus, job_result
from orchestrator.jobs.state import JobDir
from orchestrator.launch import agent_rpc
from orchestrator.launch.node_view import node_status
from orchestrator.launch.nodes import JobNodes
from orchestrator.launch.watch_process import stop_monitor
from orchestrator.launch.watcher import Watcher


class StopIncomplete(OrchestrateError, RuntimeError):
    """Some node did not confirm that every process of the job is gone."""

    exit_code = 5


@dataclass(frozen=True)
class StopResult:
    job_id: str
    confirmed: dict[str, bool]  # host -> nothing of the job left there
    errors: dict[str, str]
    killed: dict[str, dict[str, str]]  # host -> {pid: last signal}
    status: JobStatus
    released: dict[str, Optional[NpuRelease]] = field(default_factory=dict)  # host -> the NPUs' release


def stop_job(job: JobDir, grace: Optional[float] = None, nodes: Optional[JobNodes] = None,
             release_wait: Optional[float] = None) -> StopResult:  # fmt: skip
    """Stop ``job`` everywhere (see the module docstring); StopIncomplete if a node did not confirm.
    ``release_wait``: at most this long for the NPUs' release on each node (default: the job spec's)."""
    record = job.record()
    grace = record.stop_grace_s if grace is None else grace
    job.write("stop-requested", f"{time.time()}\n")
    append_event(job.path, "stop-requested", grace=grace)
    with control_lock(job):
        stop_monitor(job)
        return _stop_locked(job, grace, nodes, release_wait)


def _stop_locked(
    job: JobDir, grace: float, nodes: Optional[JobNodes], release_wait: Optional[float]
) -> StopResult:
    record = job.record()
    own = nodes is None
    nodes = nodes or JobNodes(record.nodes)
    try:

        def one(t: Any) -> Any:
            spec = nodes.node(t.host)
            agent_rpc.check_version(t, spec.python, spec.workdir)
            return agent_rpc.stop_confirmed(t, spec.python, spec.workdir, job.job_id, grace, release_wait)

        res = nodes.fan(one)
        errors = {h: str(e).splitlines()[0] for h, e in res.failures.items()}
        confirmed = {h: not r.left for h, r in res.results.items()}
        confirmed.update({h: False for h in res.failures})
        _allocation_gone(record, confirmed, errors)
        final = _final_status(job, nodes, confirmed, errors)
        from orchestrator.slurm.backend import release

        release(job.path, record.nodes)  # scancel what we submitted: Slurm ends whatever is left of it
    finally:
        if own:
            nodes.close()
    killed = {h: {str(pid): sig for pid, sig in r.killed.items()} for h, r in res.results.items()}
    released = {h: r.release for h, r in res.results.items()}
    append_event(job.path, "stopped", confirmed=confirmed, errors=errors,
                 npus={h: release_note(r) for h, r in released.items() if release_note(r)})  # fmt: skip
    result = StopResult(job.job_id, confirmed, errors, killed, final, released)
    if not all(confirmed.values()):
        bad = ", ".join(
            f"{h} ({errors.get(h) or 'processes survived'})" for h, ok in confirmed.items() if not ok
        )
        raise StopIncomplete(
            f"job {job.job_id}: not confirmed stopped on {bad}; run `orchestrate stop` again"
        )
    return result


def _allocation_gone(record: Any, confirmed: dict[str, bool], errors: dict[str, str]) -> None:
    """On Slurm, nodes of an allocation that has already ended count as stopped: Slurm killed their steps."""
    from orchestrator.slurm.backend import allocation_ended

    if errors and allocation_ended(record.nodes):
        for h in list(errors):
            confirmed[h] = True
            errors.pop(h)


def _final_status(
    job: JobDir, nodes: JobNodes, confirmed: dict[str, bool], errors: dict[str, str]
) -> JobStatus:
    """The snapshot after the stop: a finished job keeps its outcome, a running one becomes STOPPED."""
    before = job.status()
    answered = [h for h in confirmed if h not in errors]  # their agent version was just checked

    def one(t: Any) -> NodeStatus:
        spec = nodes.node(t.host)
        return node_status(t.host, agent_rpc.status(t, spec.python, spec.workdir, job.job_id), time.time())

    res = nodes.fan(one, answered)
    polled = [res.results.get(h) or NodeStatus(h, False, "unknown", None, errors.get(h, "no answer"))
              for h in nodes.hosts]  # fmt: skip
    watcher = Watcher(job, nodes)
    if before is not None and before.state.is_terminal():
        state, cause, msg = before.state, before.root_cause, before.message
    else:
        state = JobState.STOPPED if all(confirmed.values()) else JobState.STOPPING
        cause, msg = None, "stopped by the user"
    if errors:
        msg += "; " + "; ".join(f"{h}: {e}" for h, e in errors.items())
    status = replace(watcher.snapshot(state, cause, msg), nodes=tuple(polled), result=job_result(tuple(polled)),
                     started=before.started if before else watcher.started)  # fmt: skip
    job.save_status(status)
    return status
