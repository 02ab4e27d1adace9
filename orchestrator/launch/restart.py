"""The next attempt of a failed job: automatic (``--max-restarts``, run by the supervisor) or by hand
(``launch --resume JOB``).

1. find the resume point: the newest global step every rank saved, listed on all nodes at once
   (``resume_point``); none yet -> the attempt starts from scratch, and says so (a failure before the
   first checkpoint costs only those steps, and the restart budget still bounds a failure that repeats);
2. link each rank's file of that step into ``<output>/resume/attempt-<k>/rank_<R>/`` on its node;
3. bind the base plan again (same output folder, a fresh free scheduler port, the resume folder);
4. preflight, and wait until every node reports the job's NPUs free: npu-smi lists a process for
   seconds after it exited, and a rank started on an NPU not yet released fails in HCCL (EJ0001);
5. stage (the agent's record of the failed attempt is moved aside) and start, as at launch, with the
   nodes' CANN environment recorded at launch (``launch.node_env``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable, Optional

from orchestrator.agent.client import NodeBusy
from orchestrator.errors import InputError, Problem
from orchestrator.jobs.attempts import Attempt, Attempts, load_attempts, save_attempts
from orchestrator.jobs.events import append_event
from orchestrator.jobs.model import REOPENABLE, JobState
from orchestrator.jobs.state import JobDir
from orchestrator.launch import agent_rpc, resume_point
from orchestrator.launch.binding import Binding, bind_plan
from orchestrator.launch.nodes import JobNodes
from orchestrator.launch.spec import NPU_RELEASE_WAIT_S
from orchestrator.launch.start import (
    BASE_PLAN,
    Launched,
    NodeNotFree,
    check_inputs,
    needs_of,
    preflight,
    run_attempt,
    scheduler_port,
    wants_port,
)
from orchestrator.launch.watch_process import monitor_alive
from orchestrator.plan.model import Plan
from orchestrator.reshard.strategy_files import node_output_dir

Report = Callable[[str], None]


@dataclass(frozen=True)
class RestartDecision:
    """Whether the supervisor relaunches a failed attempt, and why (one line for events and status)."""

    restart: bool
    reason: str


def decide(attempts: Attempts, state: JobState, stop_requested: bool) -> RestartDecision:
    """Pure: restart a failed attempt while the budget lasts and nobody asked to stop."""
    used = len(attempts.attempts)
    if state != JobState.RESTARTING:
        return RestartDecision(False, f"the attempt ended {state.value}")
    if stop_requested:
        return RestartDecision(False, "a stop was requested")
    if attempts.left <= 0:
        return RestartDecision(False, f"no restart left ({used}/{attempts.max_attempts} attempts made)")
    return RestartDecision(True, f"attempt {used + 1}/{attempts.max_attempts}")


def find_resume_point(plan: Plan, nodes: JobNodes) -> Optional[resume_point.ResumePoint]:
    """The newest step every rank of ``plan`` (bound) saved, listed on every node in parallel."""
    by_host = {n.host: n for n in plan.nodes}

    def one(t):
        n = by_host[t.host]
        return resume_point.list_saved(t, n.python, node_output_dir(n), n.ranks)

    listed = nodes.fan(one, list(by_host)).raise_on_failure().results
    return resume_point.choose([c for cs in listed.values() for c in cs], plan.world_size)


def devices_free(plan: Plan, nodes: JobNodes, wait_s: float = NPU_RELEASE_WAIT_S) -> dict[str, float]:
    """Every node's NPUs of ``plan`` free, asked of all nodes at once (each waits at most ``wait_s`` for
    exited processes npu-smi still lists): the seconds each waited. NodeNotFree naming, per node, what
    holds an NPU (pid, user, NPU) or was not released in time."""
    devices = {n.host: n.devices for n in plan.nodes if n.devices}

    def one(t):
        spec = nodes.node(t.host)
        return agent_rpc.check_devices(t, spec.python, spec.workdir, devices[t.host], wait_s)

    res = nodes.fan(one, list(devices))
    if res.failures:
        why = [f"{h}: {(e.stderr if isinstance(e, NodeBusy) else str(e)).splitlines()[0]}"
               for h, e in res.failures.items()]  # fmt: skip
        raise NodeNotFree(f"the NPUs are not free, the next attempt does not start: {'; '.join(why)}")
    return {h: r.waited_s for h, r in res.results.items()}


def _prepare(plan: Plan, nodes: JobNodes, point: resume_point.ResumePoint, resume_dir: str) -> None:
    files: dict[str, dict[int, str]] = {}
    for rank, host, name in point.files:
        files.setdefault(host, {})[rank] = name
    by_host = {n.host: n for n in plan.nodes}

    def one(t):
        n = by_host[t.host]
        return resume_point.prepare(t, n.python, node_output_dir(n), resume_dir, files[t.host])

    nodes.fan(one, list(files)).raise_on_failure()


def relaunch(job: JobDir, how: str, say: Report = lambda _m: None) -> Launched:
    """Start the job's next attempt (``how``: restart | resume) from its newest common checkpoint."""
    record, attempts = job.record(), load_attempts(job)
    base, current = job.plan(BASE_PLAN), job.plan()
    number = len(attempts.attempts) + 1
    with JobNodes(record.nodes) as nodes:
        point = find_resume_point(current, nodes)
        resume_dir = f"resume/attempt-{number}" if point else None
        note = "" if point else "no step saved by every rank yet: starting from scratch"
        what = f"resumes from step {point.step}" if point else note
        say(f"job {job.job_id}: attempt {number}/{attempts.max_attempts} {what}")
        if point:
            _prepare(current, nodes, point, resume_dir)  # type: ignore[arg-type]
        ready = preflight(nodes, force=False, environment=False, needs=needs_of(base),  # CANN's env: as recorded
                          free_port_on=wants_port(base))  # fmt: skip
        append_event(job.path, "npus-free", waited_s=devices_free(base, nodes))  # before any node starts
        bound = bind_plan(base, Binding(job.job_id, scheduler_port(nodes, base, ready), resume_dir))
        check_inputs(bound)
        job.save_plan(bound)
        step = point.step if point else None
        save_attempts(job, attempts.begin(Attempt(number, how, time.time(), step, resume_dir, note=note)))
        append_event(job.path, "attempt", number=number, how=how, resumed_from=step, checkpoint=resume_dir,
                     files=[list(f) for f in point.files] if point else [], note=note)  # fmt: skip
        prev = job.status()
        if prev is not None:
            job.save_status(replace(prev, attempt=number, max_attempts=attempts.max_attempts, resumed_from=step,
                                    time=time.time(), message=f"attempt {number}: " + (f"resuming from step {step}"
                                    if point else "from scratch")))  # fmt: skip
        return run_attempt(job, bound, nodes, say, fresh=False, shared_paths=record.shared_paths)


def reopen(job: JobDir, max_restarts: int) -> Attempts:
    """Make a failed or stopped job resumable by hand: InputError for a job that is not."""
    status = job.status()
    if status is None or status.state not in REOPENABLE:
        state = status.state.value if status else "unknown"
        raise InputError([Problem(str(job.path), "job", f"job {job.job_id} is {state}: only a failed or stopped job "
                                  "resumes", "see `orchestrate status`; stop it first if it runs")])  # fmt: skip
    if not (job.path / BASE_PLAN).is_dir():
        raise InputError([Problem(str(job.path), "job", f"job {job.job_id} was launched by an orchestrate without "
                                  "resume support (no base plan recorded)", "launch it again")])  # fmt: skip
    if monitor_alive(job):
        raise InputError(
            [Problem(str(job.path), "job", f"a monitor still watches {job.job_id}", "wait a moment")]
        )
    attempts = load_attempts(job)
    if attempts.current is not None:
        attempts = attempts.end(status.state.value, status.ended or time.time(), str(status.root_cause or ""))
    attempts = replace(attempts, max_attempts=len(attempts.attempts) + 1 + max_restarts)
    save_attempts(job, attempts)
    (job.path / "stop-requested").unlink(missing_ok=True)
    job.save_status(replace(status, state=JobState.RESTARTING, time=time.time(), ended=None,
                            max_attempts=attempts.max_attempts, message="resume requested"), reopen=True)  # fmt: skip
    append_event(job.path, "resume-requested", max_restarts=max_restarts)
    return attempts


def mark_failed(job: JobDir, why: str) -> None:
    """Close a job whose next attempt could not start."""
    prev = job.status()
    if prev is None:
        return
    now = time.time()
    job.save_status(replace(prev, state=JobState.FAILED, time=now, ended=now, message=why))
    save_attempts(job, load_attempts(job).end("failed", now, why))
    append_event(job.path, "restart-failed", error=why)
