"""Launching a planned job: preflight every node, record the job, stage and start every node at once.

Two round trips per node over one SSH session once its agent, code and inputs are there: the CANN
environment read in one ``bash``, which then runs the agent's ``preflight --then-stage`` (its answer
names a free port for the scheduler node) and leaves it waiting; once every node passed, the agent
gets the job's ``stage`` bundle on the same session, writes the small files, finds the inputs there
and starts the job in the same process. A node lacking an input gets it through the push engine and
is started after; Slurm nodes and a restart use one command per round trip. Nothing is written to a node before every node answered with a trusted host key, the right user,
a compatible agent, no job of ours still running there on one of the job's NPUs (rank slots on ``cpu``)
or ports (``--force`` stops such a job first; jobs on other NPUs keep running) and its CANN
environment sourced (``launch.node_env``: a node without ``<ascend_root>/ascend-toolkit/set_env.sh``
is refused). If any node fails to stage or refuses to start, every node that may have started is
stopped again and the job is marked failed.
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from orchestrator.agent.client import StartResult, parse_start
from orchestrator.agent.node import devices as node_devices
from orchestrator.errors import InputError, OrchestrateError, Problem
from orchestrator.inventory.model import Inventory
from orchestrator.jobs.attempts import Attempt, Attempts, save_attempts
from orchestrator.jobs.events import append_event
from orchestrator.jobs.ids import new_job_id
from orchestrator.jobs.model import JobState, JobStatus, RootCause
from orchestrator.jobs.state import JobDir, JobRecord, ProcessRef
from orchestrator.launch import agent_rpc, node_env
from orchestrator.launch.binding import Binding, bind_plan, user_set_port
from orchestrator.launch.nodes import JobNodes
from orchestrator.launch.spec import agent_name, spec_path
from orchestrator.launch.stage import input_summary, stage_all
from orchestrator.plan.model import Plan
from orchestrator.transport import GroupResult, Transport

Report = Callable[[str], None]
BASE_PLAN = "base-plan"  # the job folder's copy of the plan as made; ``plan/`` holds it bound to the job


class NodeNotFree(OrchestrateError, RuntimeError):
    """A node still runs another job on the NPUs or ports this one needs, or its scheduler port is taken."""

    exit_code = 5


@dataclass(frozen=True)
class Launched:
    job: JobDir
    record: JobRecord
    stage_s: float  # inputs pushed, small files staged and (over SSH) the agents started with them
    start_s: float  # the starts after staging (Slurm's start step, nodes whose code was shipped first)
    code_cached: dict[str, bool]


def resolve_plan(task: str, inventory_path: Optional[str], plan_dir: Optional[str],
                 sets: tuple[str, ...] = ()) -> tuple[Plan, Inventory]:  # fmt: skip
    """The plan to launch (made now, or read from ``plan_dir``) and the inventory it was made from."""
    from orchestrator.inventory import default_inventory, load_inventory
    from orchestrator.inventory.defaults import DEFAULT_SOURCE
    from orchestrator.plan.plan_io import load_plan
    from orchestrator.plan.planner import make_plan

    if plan_dir and (inventory_path or sets):
        raise InputError([Problem("--plan", "--plan", "a plan folder is complete: --inventory/--set do not apply",
                                  "plan again with `orchestrate plan ... --set`, or drop --plan")])  # fmt: skip
    if plan_dir:
        plan = load_plan(plan_dir)
        if plan.task != task:
            raise InputError([Problem(plan_dir, "task", f"the plan is for {plan.task}, not {task}",
                                      f"orchestrate launch {plan.task} --plan {plan_dir}")])  # fmt: skip
        src = plan.inventory_source
        inv = default_inventory() if src == DEFAULT_SOURCE else load_inventory(src)
        return plan, inv
    inv = load_inventory(inventory_path) if inventory_path else default_inventory()
    return make_plan(inv, task, sets), inv


def check_inputs(plan: Plan) -> None:
    """InputError naming every job input (dataset, tokenizer, checkpoint) missing on this machine."""
    problems = [Problem(x.source, "job input", f"does not exist (needed at {x.dest} on {x.host})",
                        "create it or fix the path (inventory job: section or --set job.<input>=PATH)")
                for x in plan.transfers if x.kind == "input" and not Path(x.source).exists()]  # fmt: skip
    if plan.strategy.training and not plan.job.train_dataset:
        problems.append(Problem(plan.inventory_source, "job.train_dataset", f"{plan.task} needs a training dataset",
                                "set job.train_dataset in the inventory or --set job.train_dataset=PATH"))  # fmt: skip
    for key, what in (("eval_dataset", "a dataset to score"), ("load_checkpoint", "a checkpoint to score")):
        if plan.task == "eval" and not getattr(plan.job, key):
            problems.append(Problem(plan.inventory_source, f"job.{key}", f"eval needs {what}",
                                    f"set job.{key} in the inventory or --set job.{key}=PATH"))  # fmt: skip
    unique = {(p.file, p.field): p for p in problems}
    if unique:
        raise InputError(list(unique.values()))


def make_record(job_id: str, plan: Plan, inventory: Inventory, now: float) -> JobRecord:
    nodes = tuple(inventory.node(n.host) for n in plan.nodes)
    procs = tuple(ProcessRef(x.host, agent_name(x), x.rank, x.stdout) for x in plan.launches())
    t = plan.timeouts
    return JobRecord(
        job_id=job_id, task=plan.task, created=now, inventory_source=plan.inventory_source, nodes=nodes,
        agent_path=tuple((n.host, agent_rpc.agent_path(n.workdir)) for n in nodes),
        agent_workdir=tuple((n.host, agent_rpc.agent_workdir(n.workdir)) for n in nodes),
        processes=procs, heartbeat_s=t.heartbeat_s, failure_detect_s=t.failure_detect_s, stop_grace_s=t.stop_grace_s,
        shared_paths=tuple(inventory.cluster.shared_paths),
    )  # fmt: skip


_FREE_PORT = """import socket, sys
s = socket.socket()
s.bind((sys.argv[1], 0))
print(s.getsockname()[1])
"""

_PORT_FREE = """import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError as e:
    sys.exit("%s:%s: %s" % (sys.argv[1], sys.argv[2], e.strerror))
"""


Needs = tuple[tuple[int, ...], tuple[int, ...]]  # (devices, ports) a job takes on a node; no devices: all


def in_the_way(live: Sequence[dict[str, Any]], need: Optional[Needs]) -> list[tuple[dict[str, Any], dict[str, Any]]]:  # fmt: skip
    """The live jobs (as the agent's ``list`` answers) that hold a device or port of ``need`` (None: the
    whole node), each with what it takes; a job listed without its devices (an older agent) holds all."""
    want = node_devices.holds({"devices": list(need[0]), "ports": list(need[1])} if need else None)
    taken = [(j, node_devices.overlap(want, node_devices.holds(j))) for j in live]
    return [(j, t) for j, t in taken if t is not None]


def _preflight_node(t: Transport, python: str, workdir: str, force: bool, port: Optional[int] = None,
                    need: Optional[Needs] = None, unit: str = "NPU", answer: Any = None) -> str:  # fmt: skip
    """Check one node from its agent's ``preflight`` ``answer`` (asked now when None): no running job
    holds a device or port of ``need``, the scheduler ``port`` is free; its installed agent version.
    Jobs of ours on other devices and ports are left running."""
    if answer is None:
        answer = t.run(agent_rpc.commands(python, workdir).preflight(), timeout=30, check=False)
    version, live = agent_rpc.preflight_answer(answer)
    blocking = in_the_way(live, need)
    if blocking and not force:
        jobs = "; ".join(f"{j['job_id']} ({j['state']}, {j['processes']} processes) holds {node_devices.describe(taken['npus'], taken['ports'], unit)}"
                         for j, taken in blocking)  # fmt: skip
        raise NodeNotFree(f"{t.host}: the agent refuses: job(s) of this orchestrator still running there hold what this job needs: "
                          f"{jobs}; `orchestrate stop JOB` first, or launch with --force to stop them")  # fmt: skip
    if blocking and version != agent_rpc.AGENT_VERSION:  # --force: stop them with the agent that runs them
        for j, _taken in blocking:
            agent_rpc.stop(t, python, workdir, j["job_id"], grace=10.0)
    if port is not None and not blocking:  # with --force the old job frees the port when it is stopped
        res = t.run([python, "-c", _PORT_FREE, t.host, str(port)], check=False, timeout=30)
        if res.exit_code != 0:
            raise NodeNotFree(f"{t.host}: the scheduler port is taken ({res.stderr.strip()}); free it, or plan "
                           "with another port: --set job.sched_port=PORT")  # fmt: skip
    return version


@dataclass(frozen=True)
class NodeReady:
    """A node that passed preflight: its installed agent version and its sourced CANN environment;
    ``session``: its agent, still running, waiting for the job's ``stage`` bundle (``keep_open``)."""

    version: str
    env: node_env.NodeEnv
    session: Optional[agent_rpc.StagingSession] = None
    free_port: Optional[int] = None  # a port free there at preflight, when asked (``free_port_on``)


def close_sessions(ready: dict[str, NodeReady]) -> None:
    """End every node's waiting agent session that was not used (best effort)."""
    for r in ready.values():
        if r.session is not None:
            r.session.close()


def needs_of(plan: Plan, ports: Optional[dict[str, int]] = None) -> dict[str, Needs]:
    """What ``plan`` takes on each node: its devices, and the port in ``ports`` of that host."""
    return {
        n.host: (n.devices, tuple([(ports or {})[n.host]] if n.host in (ports or {}) else []))
        for n in plan.nodes
    }


def preflight(nodes: JobNodes, force: bool, ports: Optional[dict[str, int]] = None, source: str = "inventory",
              environment: bool = True, needs: Optional[dict[str, Needs]] = None,
              keep_open: bool = False, free_port_on: Optional[str] = None) -> dict[str, NodeReady]:  # fmt: skip
    """Every node reachable and free of jobs holding what ``needs`` names (the devices and ports the job
    takes there; missing: the whole node) or ``force``, and (``environment``) its CANN scripts sourced,
    all nodes at once; raises one error naming every failing node (InputError when every failure is a
    missing set_env.sh, ``source`` being the inventory). ``keep_open`` (with ``environment``): each
    node's agent stays running after its answer, waiting for the job's ``stage`` bundle (``session``
    of the result; the caller sends it or closes it), except where the agent had to be installed.
    ``free_port_on``: the node of that address also names a port free there now (``free_port``)."""

    def one(t: Transport) -> NodeReady:
        spec = nodes.node(t.host)
        cmds, session = agent_rpc.commands(spec.python, spec.workdir), None
        port_at = free_port_on if t.host == free_port_on else None
        if environment and keep_open:  # the CANN environment, then the agent left running: one session
            ask = cmds.preflight(then_stage=True, free_port=port_at)
            env, stream = node_env.open_after(t, spec.ascend_root, source, ask)
            session = agent_rpc.StagingSession(t.host, stream, shlex.join(ask))
        try:
            if session is not None:
                answer = session.preflight()
            elif environment:  # the agent's answer and the CANN environment in one round trip
                env, answer = node_env.probe_after(
                    t, spec.ascend_root, source, cmds.preflight(free_port=port_at)
                )
            else:  # the agent's answer alone (a restart: CANN's environment as recorded)
                env, answer = (
                    node_env.NodeEnv(t.host),
                    t.run(cmds.preflight(free_port=port_at), timeout=30, check=False),
                )
            need, unit = (needs or {}).get(t.host), "NPU" if spec.ascend_root else "device"
            port = (ports or {}).get(t.host)
            version = _preflight_node(t, spec.python, spec.workdir, force, port, need, unit, answer)
            if session is not None and (session.closed or version != agent_rpc.AGENT_VERSION):
                session.close()  # the agent was missing (or is another build): stage installs it
                session = None
            return NodeReady(version, env, session, agent_rpc.free_port(answer) if port_at else None)
        except BaseException:
            if session is not None:
                session.close()
            raise

    res = nodes.fan(one)
    if res.failures:
        close_sessions(res.results)
    missing = node_env.merged_problems(res.failures)
    if missing is not None:
        raise missing
    return res.raise_on_failure().results


def _start_node(t: Transport, nodes: JobNodes, job_id: str, force: bool) -> StartResult:
    """Start the node's part; the agent's NodeBusy (its conflicts listed) when it refuses."""
    spec = nodes.node(t.host)
    argv = agent_rpc.commands(spec.python, spec.workdir).start(spec_path(spec.workdir, job_id), force)
    return parse_start(t.run(argv, timeout=120, check=False))


def _start_all(nodes: JobNodes, job_id: str, force: bool, hosts: Sequence[str]) -> Any:
    """The part of ``hosts`` started: an agent ``start`` per node, or on a Slurm allocation (every node)
    one job step whose task on each node is the agent's ``start --foreground`` (``slurm.start_step``)."""
    route = nodes.nodes[0].slurm
    if route is None:
        return nodes.fan(lambda t: _start_node(t, nodes, job_id, force), list(hosts))
    from orchestrator.slurm.backend import work_dir
    from orchestrator.slurm.start_step import start_nodes

    def argv_of(spec: Any) -> list[str]:
        cmds = agent_rpc.commands(spec.python, spec.workdir)
        return [*cmds.start(spec_path(spec.workdir, job_id), force), "--foreground"]

    login = nodes.pool.get(nodes.nodes[0]).login  # the StepTransport's login host
    return start_nodes(login, nodes.nodes, argv_of, work_dir(route.login, f"{route.slurm_job}/{job_id}"))


def stop_started(nodes: JobNodes, job_id: str, hosts: list[str], grace: float) -> None:
    """Stop the job on ``hosts`` (best effort: used when the launch failed elsewhere)."""

    def one(t: Transport) -> Any:
        spec = nodes.node(t.host)
        return agent_rpc.stop_confirmed(t, spec.python, spec.workdir, job_id, grace)

    nodes.fan(one, hosts)


def _failed(job: JobDir, task: str, started: float, failures: dict[str, BaseException], what: str) -> None:
    """Record a launch that failed on some nodes (the first named as the cause)."""
    host, exc = next(iter(failures.items()))
    cause = RootCause(host, "node", None, None, f"{what}: {str(exc).splitlines()[0]}", time.time())
    prev = job.status()
    keep = prev.attempt_fields() if prev else {}
    job.save_status(JobStatus(job.job_id, task, JobState.FAILED, time.time(), started=started, ended=time.time(),
                              root_cause=cause, message=what, **keep))  # fmt: skip
    append_event(job.path, what.replace(" ", "-"), failures={h: str(e) for h, e in failures.items()})


def launch(plan: Plan, inventory: Inventory, *, force: bool = False, report: Optional[Report] = None,
           pool: Any = None, max_restarts: int = 0) -> Launched:  # fmt: skip
    """Preflight, record, bind, stage and start ``plan``; returns once every rank of every node runs.

    ``plan`` is the base plan (as ``make_plan`` made it); the job runs it bound to its own output
    folder and, unless the plan sets one, to a scheduler port found free on the scheduler node.
    ``max_restarts``: how often the monitor may relaunch the job after a failure.
    """
    nodes = JobNodes([inventory.node(n.host) for n in plan.nodes], pool)
    try:
        return _launch(plan, nodes, inventory, force, report or (lambda _msg: None), max_restarts)
    finally:
        if pool is None:
            nodes.close()


def wants_port(plan: Plan) -> Optional[str]:
    """The scheduler node, when launch must find the scheduler a free port there (the user set none)."""
    host = plan.scheduler_host
    return host if host and plan.sched_port is not None and not user_set_port(plan) else None


def scheduler_port(
    nodes: JobNodes, plan: Plan, ready: Optional[dict[str, NodeReady]] = None
) -> Optional[int]:
    """A port free now on the scheduler node, when the plan has a scheduler and the user set no port
    (the one its preflight named, in ``ready``, else asked now)."""
    host = wants_port(plan)
    if host is None:
        return None
    named = (ready or {}).get(host)
    if named is not None and named.free_port is not None:
        return named.free_port
    spec = nodes.node(host)
    res = nodes.fan(lambda t: t.run([spec.python, "-c", _FREE_PORT, host], timeout=30), [host])
    return int(res.raise_on_failure().results[host].stdout.split()[-1])


def _launch(plan: Plan, nodes: JobNodes, inventory: Inventory, force: bool, say: Report,
            max_restarts: int) -> Launched:  # fmt: skip
    check_inputs(plan)
    say(f"checking {len(nodes.hosts)} node(s)")
    pinned = plan.scheduler_host and plan.sched_port and user_set_port(plan)
    ports = {plan.scheduler_host: plan.sched_port} if pinned else {}
    keep_open = nodes.nodes[0].slurm is None  # over SSH: each node's agent waits for its stage bundle
    ready = preflight(nodes, force, ports, inventory.source, needs=needs_of(plan, ports), keep_open=keep_open,  # type: ignore[arg-type]
                      free_port_on=wants_port(plan))  # fmt: skip
    try:
        return _record_and_run(plan, nodes, inventory, force, say, max_restarts, ready)
    finally:
        close_sessions(ready)


def _record_and_run(plan: Plan, nodes: JobNodes, inventory: Inventory, force: bool, say: Report,
                    max_restarts: int, ready: dict[str, NodeReady]) -> Launched:  # fmt: skip
    """Record the job that passed ``ready`` (its preflight), bind its plan and run its first attempt."""
    port = scheduler_port(nodes, plan, ready)
    now = time.time()
    job = JobDir(new_job_id(plan.task, now)).create()
    node_env.save(job, [r.env for r in ready.values()])
    bound = bind_plan(plan, Binding(job.job_id, sched_port=port))
    record = make_record(job.job_id, bound, inventory, now)
    job.save_record(record)
    job.save_plan(plan, BASE_PLAN)
    job.save_plan(bound)
    save_attempts(job, Attempts(1 + max_restarts, (Attempt(1, "launch", now),)))
    job.save_status(JobStatus(job.job_id, plan.task, JobState.STAGING, time.time(), started=now,
                              max_attempts=1 + max_restarts))  # fmt: skip
    append_event(job.path, "created", task=plan.task, hosts=list(nodes.hosts), max_restarts=max_restarts,
                 output_dir=bound.job.output_dir, sched_port=bound.sched_port)  # fmt: skip
    sessions = {h: r.session for h, r in ready.items() if r.session is not None}
    return run_attempt(job, bound, nodes, say, fresh=True, force=force,
                       shared_paths=inventory.cluster.shared_paths, sessions=sessions)  # fmt: skip


def run_attempt(job: JobDir, plan: Plan, nodes: JobNodes, say: Report, fresh: bool, force: bool = False,
                shared_paths: Sequence[str] = (),
                sessions: Optional[dict[str, agent_rpc.StagingSession]] = None) -> Launched:  # fmt: skip
    """Stage and start the job's current attempt of the bound ``plan`` (``fresh``: its first one);
    ``shared_paths``: the inventory's, where inputs are written once when verified shared;
    ``sessions``: nodes whose agent waits for the stage bundle since the preflight."""
    record = job.record()
    status = job.status()
    extra = status.attempt_fields() if status else {}
    started = status.started if status and status.started else record.created
    job.save_status(JobStatus(job.job_id, plan.task, JobState.STAGING, time.time(), started=started, **extra))
    say(f"job {job.job_id}: staging and starting {len(record.processes)} process(es)")
    t0 = time.monotonic()
    envs = {h: e.env for h, e in node_env.load(job).items()}
    # Over SSH each node's agent starts its part in the staging round trip; under Slurm the agents
    # start as one job step after every node is staged.
    together = nodes.nodes[0].slurm is None
    staged = stage_all(nodes, plan, job.job_id, fresh, shared_paths, sys.stderr.isatty(), envs,
                       start=force if together else None, sessions=sessions)  # fmt: skip
    if not staged.ok:
        if together:  # a node that staged, or failed to answer, may have started all the same
            stop_started(nodes, job.job_id, list(nodes.hosts), 5.0)
        _failed(
            job,
            plan.task,
            started,
            staged.failures,
            "staging and start failed" if together else "staging failed",
        )
        staged.raise_on_failure()
    stage_s = time.monotonic() - t0
    append_event(job.path, "staged", seconds=round(stage_s, 3),
                 code_cached={h: r.code_cached for h, r in staged.results.items()},
                 inputs={h: vars(r.inputs) for h, r in staged.results.items()})  # fmt: skip
    summary = input_summary(list(staged.results.values()))
    if summary:
        say(f"job {job.job_id}: {summary}")
    job.save_status(
        JobStatus(job.job_id, plan.task, JobState.STARTING, time.time(), started=started, **extra)
    )
    t1 = time.monotonic()
    begun = {h: r.started for h, r in staged.results.items() if r.started is not None}
    rest = [h for h in nodes.hosts if h not in begun]  # nodes whose code was shipped first, or Slurm's
    res = _start_all(nodes, job.job_id, force, rest) if rest else GroupResult(nodes.hosts, {}, {})
    start_s = time.monotonic() - t1
    if not res.ok:
        # a node that failed to answer (timeout, dropped connection) may have started all the same
        stop_started(nodes, job.job_id, list(nodes.hosts), 5.0)
        _failed(job, plan.task, started, res.failures, "start failed")
        res.raise_on_failure()
    res = GroupResult(nodes.hosts, {**begun, **res.results}, {})
    pids = {h: {p.name: p.pid for p in r.processes} for h, r in res.results.items()}
    waited = {h: r.released.waited_s for h, r in res.results.items() if r.released and r.released.waited_s}
    device_ids = {h: r.device_map for h, r in res.results.items() if r.device_map}  # physical -> DEVICE_ID
    append_event(job.path, "started", seconds=round(start_s, 3), pids=pids, npu_release_waited_s=waited,
                 device_ids=device_ids)  # fmt: skip
    job.save_status(JobStatus(job.job_id, plan.task, JobState.RUNNING, time.time(), started=started, **extra))
    return Launched(job, record, stage_s, start_s, {h: r.code_cached for h, r in staged.results.items()})
