"""The controller's side of the node agent: the job spec it reads, its command lines, its typed answers.

The agent (``orchestrator.agent.node``, one zipapp: ``orchestrator.agent.bundle``) is run on each node as
``<python> -S <agent> [--workdir DIR] <verb> ...``; :class:`AgentCommands` builds those argv lists for a
``Transport.run(argv, check=False)``, and the ``parse_*`` functions turn the ``RunResult`` into typed
answers or raise: :class:`NodeBusy` (a live job holds a needed NPU or port there), :class:`AgentMismatch`, or
``RemoteCommandError`` for anything else (message, exit code and output tail included).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Type, TypeVar

from orchestrator.agent.node import base as node_base
from orchestrator.agent.node import devices as node_devices
from orchestrator.errors import OrchestrateError, RemoteCommandError
from orchestrator.transport.base import RunResult

AGENT_VERSION = node_base.AGENT_VERSION
TERMINAL_STATES = node_base.TERMINAL
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
T = TypeVar("T")


# ---------------------------------------------------------------- what the agent is told


@dataclass(frozen=True)
class ProcessSpec:
    """One process the agent starts: a rank (``rank`` set) or the dynamic-cluster scheduler (``None``)."""

    argv: Tuple[str, ...]
    log: str  # appended to, never deleted
    env: Mapping[str, str] = field(default_factory=dict)  # planned env; ORCHESTRATE_* are added
    cwd: str = ""
    rank: Optional[int] = None
    device: Optional[int] = None  # the physical NPU id it binds (the agent sets DEVICE_ID as it sees it)

    def to_dict(self) -> Dict[str, Any]:
        out = {"argv": list(self.argv), "log": self.log, "env": dict(self.env), "cwd": self.cwd}
        out.update({} if self.device is None else {"device": self.device})
        return out if self.rank is None else dict(out, rank=self.rank)


@dataclass(frozen=True)
class JobSpec:
    """Everything one node's agent needs to run its part of a job (written as JSON next to the agent)."""

    job_id: str
    node: str
    work_dir: str  # the agent's state folder on the node: <work_dir>/jobs/<job_id>/
    ranks: Tuple[ProcessSpec, ...]
    scheduler: Optional[ProcessSpec] = None  # on the master node only
    devices: Tuple[int, ...] = ()  # NPU ids (rank slots on cpu) this node's ranks hold; none: the whole node
    ports: Tuple[int, ...] = ()  # ports the job reserves here (the dynamic-cluster scheduler's)
    grace_s: float = 10.0  # TERM -> KILL delay when stopping
    fail_fast: bool = True  # stop the node's other processes when one exits non-zero
    heartbeat_s: float = 1.0
    inherit_env: bool = True  # start from the agent's environment, then apply each process's env
    seq_length: Optional[int] = None  # turns samples/s into tokens/s in status
    release_wait_s: float = node_base.RELEASE_WAIT_S  # at most this long for npu-smi to free the NPUs
    agent_version: str = AGENT_VERSION

    def __post_init__(self) -> None:
        problems = [] if _JOB_ID.match(self.job_id) else [f"job_id {self.job_id!r}: letters, digits, . _ -"]
        problems += [] if self.ranks else ["no ranks"]
        procs = [*self.ranks, *([self.scheduler] if self.scheduler else [])]
        problems += [f"{p.log or '?'}: empty argv" for p in procs if not p.argv]
        problems += [
            f"{p.log}: a rank needs an integer rank" for p in self.ranks if not isinstance(p.rank, int)
        ]
        ranks = [p.rank for p in self.ranks]
        problems += [f"duplicate ranks {sorted(ranks)}"] if len(set(ranks)) != len(ranks) else []
        if problems:
            raise ValueError(f"bad job spec for {self.node}: " + "; ".join(problems))

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data.update(
            ranks=[p.to_dict() for p in self.ranks], devices=list(self.devices), ports=list(self.ports)
        )
        data["scheduler"] = self.scheduler.to_dict() if self.scheduler else None
        return json.dumps(data, indent=1, sort_keys=True)


@dataclass(frozen=True)
class AgentCommands:
    """The argv lists that run the agent on one node (hand them to ``Transport.run``)."""

    agent_path: str  # the agent zipapp on the node (``orchestrator.agent.bundle``)
    python: str = "python3"
    workdir: Optional[str] = None  # as in JobSpec.work_dir (status/stop/list need it)

    def _argv(self, *args: str) -> list[str]:
        # -S: the agent is stdlib only, and a node Python's site (.pth files of every installed package)
        # costs 12 ms of each call's start; the processes it starts are their own interpreters
        workdir = ["--workdir", self.workdir] if self.workdir else []
        return [self.python, "-S", self.agent_path, *workdir, *args]

    def start(self, spec_path: str, force: bool = False) -> list[str]:
        return self._argv("start", "--spec", spec_path, *(["--force"] if force else []))

    def status(self, job_id: str, lines: int = 20, cpu_sample: float = 0.1) -> list[str]:
        """``cpu_sample`` 0 answers at once, with CPU % averaged over each process's life."""
        return self._argv("status", "--job", job_id, "--lines", str(lines), "--cpu-sample", str(cpu_sample))

    def stop(self, job_id: str, grace: float = 10.0, release_wait: Optional[float] = None) -> list[str]:
        """``release_wait``: seconds to wait for the NPUs' release (default: the job spec's)."""
        wait = [] if release_wait is None else ["--release-wait", str(release_wait)]
        return self._argv("stop", "--job", job_id, "--grace", str(grace), *wait)

    def watch(self, job_id: str, after: int = 0, heartbeat: float = 1.0) -> list[str]:
        """The job's event stream (``agent.node.watch``): JSON lines out, commands in, until stdin ends."""
        return self._argv("watch", "--job", job_id, "--after", str(after), "--heartbeat", str(heartbeat))

    def stage(self) -> list[str]:
        """Write a job's small files from the JSON bundle on stdin (``agent.node.stage``)."""
        return self._argv("stage")

    def version(self) -> list[str]:
        return self._argv("version")

    def preflight(self, then_stage: bool = False, free_port: Optional[str] = None) -> list[str]:
        """``version`` and ``list`` in one answer (``free_port``: and a port free now on that address;
        ``then_stage``: then one ``stage`` bundle read as a line)."""
        extra = (["--then-stage"] if then_stage else []) + (["--free-port", free_port] if free_port else [])
        return self._argv("preflight", *extra)

    def check_devices(self, devices: Sequence[int], wait: float = 0.0) -> list[str]:
        """``wait``: seconds to wait for exited processes npu-smi still lists on ``devices``."""
        return self._argv(
            "check-devices", "--devices", ",".join(str(d) for d in devices), "--wait", str(wait)
        )


# ---------------------------------------------------------------- what the agent answers


@dataclass(frozen=True)
class Progress:
    """The last MindFormers loss-monitor line of a rank's log."""

    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    global_step: int
    total_steps: int
    loss: Optional[float] = None
    per_step_ms: Optional[float] = None
    lr: Optional[str] = None
    overflow: Optional[str] = None
    loss_scale: Optional[str] = None
    global_norm: Optional[str] = None
    tflops_per_npu: Optional[float] = None
    percent: Optional[float] = None
    samples_per_s: Optional[float] = None  # per process (MindFormers' samples/s/p)
    tokens_per_s: Optional[float] = None  # samples_per_s * seq_length, when the spec gave it
    eta_s: Optional[int] = None


@dataclass(frozen=True)
class EvalResult:
    """The result line of the model package's run_mode eval in a rank's log."""

    loss: float
    perplexity: float
    rows: int
    tokens: int


@dataclass(frozen=True)
class ProcessStatus:
    """One process of the job on one node, as the agent recorded and observed it."""

    name: str  # "rank-3" or "scheduler"
    rank: Optional[int]
    role: str  # "rank" | "scheduler"
    state: str  # running | exiting | exited | lost | not-started
    pid: Optional[int]
    pgid: Optional[int]
    log: str
    started: Optional[float] = None
    ended: Optional[float] = None
    returncode: Optional[int] = None  # as Popen reports it: -15 for SIGTERM
    exit_code: Optional[int] = None  # shell style: 143 for SIGTERM
    signal: Optional[str] = None
    killed_by_agent: bool = False  # stopped by us (fail-fast or stop), not a cause
    spawn_error: Optional[str] = None
    end_seq: Optional[int] = None  # order of ending on this node, 1 = first
    cpu_percent: Optional[float] = None
    rss_bytes: Optional[int] = None
    log_tail: Tuple[str, ...] = ()
    progress: Optional[Progress] = None
    result: Optional[EvalResult] = None


@dataclass(frozen=True)
class RootCause:
    """The first process on a node that failed on its own (not one the agent stopped)."""

    name: str
    rank: Optional[int]
    role: str
    node: Optional[str]
    pid: Optional[int]
    exit_code: Optional[int]
    signal: Optional[str]
    spawn_error: Optional[str]
    ended: Optional[float]
    log: str
    log_tail: Tuple[str, ...] = ()


@dataclass(frozen=True)
class JobStatus:
    """``status`` of one job on one node."""

    job_id: str
    node: Optional[str]
    state: str  # starting | running | stopping | succeeded | failed | stopped | unknown
    supervisor_pid: int
    supervisor_alive: bool
    heartbeat_age: float
    started: float
    ended: Optional[float]
    root_cause: Optional[RootCause]
    stopping_reason: Optional[str]
    end_order: Tuple[str, ...]
    processes: Tuple[ProcessStatus, ...]

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class StartedProcess:
    name: str
    rank: Optional[int]
    role: str
    pid: Optional[int]
    pgid: Optional[int]
    log: str
    spawn_error: Optional[str] = None


@dataclass(frozen=True)
class NpuRelease:
    """The wait for npu-smi to stop listing processes on a job's NPUs (``free`` None: npu-smi absent or
    failing, nothing known; False: ``listed`` pids were still listed after ``waited_s``)."""

    devices: Tuple[int, ...] = ()
    free: Optional[bool] = True
    waited_s: float = 0.0
    listed: Tuple[int, ...] = ()
    error: str = ""


def release_note(r: Optional[NpuRelease]) -> str:
    """``NPUs free after 2.1 s`` / ``NPUs still listed after 30.0 s: pid 42`` / "" (nothing to know)."""
    if r is None or r.free is None or not r.devices:
        return ""
    if r.free:
        return f"NPUs free after {r.waited_s:.1f} s"
    return f"NPUs still listed after {r.waited_s:.1f} s: pid {', '.join(str(p) for p in r.listed)}"


def _release(data: Optional[Mapping[str, Any]]) -> Optional[NpuRelease]:
    if not data:
        return None
    listed = tuple(r["pid"] for r in data.get("listed", []))
    return NpuRelease(tuple(data.get("devices", ())), data.get("free"), data.get("waited_s", 0.0), listed,
                      data.get("error", ""))  # fmt: skip


@dataclass(frozen=True)
class StartResult:
    job_id: str
    supervisor_pid: int
    processes: Tuple[StartedProcess, ...]
    released: Optional[NpuRelease] = None  # the wait, before starting, for exited processes' NPUs
    device_map: Optional[Mapping[str, Any]] = None  # rank -> physical device, logic id, DEVICE_ID given


@dataclass(frozen=True)
class StopResult:
    """What ``stop`` signalled (pid -> last signal), what survived (empty when clean) and the wait for
    the job's NPUs to be released afterwards."""

    job_id: str
    state: str
    killed: Mapping[int, str]
    left: Tuple[int, ...]
    release: Optional[NpuRelease] = None


@dataclass(frozen=True)
class DeviceCheck:
    """``check-devices``: the NPUs free (no process listed on them), after waiting ``waited_s``."""

    devices: Tuple[int, ...]
    free: bool
    waited_s: float
    npu_smi: Optional[str]


@dataclass(frozen=True)
class Conflict:
    """What is in the way of a job on the node: a process of another job (found by the agent's records,
    environment or npu-smi) or a port a foreign listener holds (``source`` port, no pid)."""

    source: str  # record | environment | npu-smi | port
    pid: Optional[int]
    job: Optional[str]
    cmd: str = ""
    npu: Optional[int] = None  # the physical NPU id npu-smi lists the pid on
    user: Optional[str] = None
    state: str = "running"  # npu-smi rows: running, or exited (listed, not released yet)
    npus: Optional[Tuple[int, ...]] = ()  # record: the needed NPUs its job holds (None: the whole node)
    ports: Tuple[int, ...] = ()  # record: the needed ports its job holds
    port: Optional[int] = None  # source port: the port in use

    def __str__(self) -> str:
        if self.source == "port":
            return f"port {self.port} in use"
        held = "" if self.source != "record" else ", holds " + node_devices.describe(
            None if self.npus is None else list(self.npus), list(self.ports))  # fmt: skip
        where = "" if self.npu is None else f", NPU {self.npu}"
        who = f", user {self.user}" if self.user else ""
        return f"pid {self.pid} ({self.source}{where}{who}, {self.state}, job {self.job}{held}): {self.cmd}"


class NodeBusy(RemoteCommandError):
    """``start`` refused: a live job of ours holds an NPU or port the job needs, an NPU is held by another
    process or not released yet, a port by a foreign listener (listed in ``conflicts``)."""

    def __init__(self, result: RunResult, message: str, conflicts: Sequence[Conflict]):
        self.conflicts = tuple(conflicts)
        lines = [message] + [f"  {c}" for c in self.conflicts]
        super().__init__(result.host, result.command, result.exit_code, stderr="\n".join(lines))


class AgentMismatch(OrchestrateError, RuntimeError):
    """The agent on a node is another version than this controller's."""


def _build(cls: Type[T], data: Mapping[str, Any], **nested: Any) -> T:
    """``cls`` from the agent's JSON: known fields only, lists as tuples, ``nested`` overriding."""
    values = {f.name: data.get(f.name) for f in dataclasses.fields(cls) if f.name in data}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**{**values, **nested})


def answer(result: RunResult) -> Dict[str, Any]:
    """The agent's JSON answer, or the error it reports (``NodeBusy`` or ``RemoteCommandError``)."""
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        data = None
    if not isinstance(data, dict):
        raise RemoteCommandError(result.host, result.command, result.exit_code, result.stdout, result.stderr)
    if not data.get("ok"):
        message = data.get("error", "the agent failed")
        if result.exit_code == node_base.EXIT_BUSY and "conflicts" in data:
            raise NodeBusy(result, message, [_build(Conflict, c) for c in data["conflicts"]])
        raise RemoteCommandError(result.host, result.command, result.exit_code, stderr=message)
    return data


def parse_start(result: RunResult) -> StartResult:
    return start_from(answer(result))


def start_from(data: Mapping[str, Any]) -> StartResult:
    """A StartResult from the agent's ``start`` answer (also ``stage``'s when it started the job)."""
    procs = tuple(_build(StartedProcess, p) for p in data["processes"])
    return StartResult(data["job"], data["supervisor_pid"], procs, _release(data.get("released")),
                       data.get("device_map"))  # fmt: skip


def parse_status(result: RunResult) -> JobStatus:
    return status_from(answer(result))


def status_from(data: Mapping[str, Any]) -> JobStatus:
    """A JobStatus from the agent's ``status`` JSON (an answer, or a snapshot on the watch stream)."""
    procs = tuple(
        _build(
            ProcessStatus,
            p,
            progress=_build(Progress, p["progress"]) if p.get("progress") else None,
            result=_build(EvalResult, p["result"]) if p.get("result") else None,
        )
        for p in data["processes"]
    )
    cause = _build(RootCause, data["root_cause"]) if data.get("root_cause") else None
    reason = (data.get("stopping") or {}).get("reason")
    return _build(JobStatus, data, root_cause=cause, stopping_reason=reason, processes=procs)


def parse_stop(result: RunResult) -> StopResult:
    """The stop report; ``RemoteCommandError`` (exit 5) when processes of the job survived."""
    return stop_from(answer(result))


def stop_from(data: Mapping[str, Any]) -> StopResult:
    """A StopResult from the agent's ``stop`` JSON."""
    killed = {int(pid): sig for pid, sig in data["killed"].items()}
    left = tuple(p["pid"] for p in data["left"])
    return StopResult(data["job"], data["state"], killed, left, _release(data.get("release")))


def parse_check_devices(result: RunResult) -> DeviceCheck:
    """The NPUs free; ``NodeBusy`` naming the pid, user and NPU of what holds them otherwise."""
    data = answer(result)
    return DeviceCheck(
        tuple(data["devices"]), bool(data["free"]), float(data["waited_s"]), data.get("npu_smi")
    )


def parse_version(result: RunResult, expected: str = AGENT_VERSION) -> str:
    """The agent's version; ``AgentMismatch`` unless it is ``expected``."""
    version = str(answer(result)["version"])
    if version != expected:
        raise AgentMismatch(f"{result.host}: node agent version {version}, this controller needs {expected}")
    return version
