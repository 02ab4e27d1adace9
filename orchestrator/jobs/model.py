"""Typed job status: the state machine of a job and what the controller knows of each node and rank.

A ``JobStatus`` is one snapshot (what ``status --json`` prints, what ``status.json`` holds); it is built
by ``launch.watcher`` from the node agents' answers and converts to JSON and back without loss.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any, Optional, Sequence


class JobState(str, enum.Enum):
    """Where a job is. Terminal: SUCCEEDED, FAILED, STOPPED (nothing of the job runs any more)."""

    PENDING = "pending"  # id and state folder exist, nothing touched yet
    STAGING = "staging"  # files go to the nodes
    STARTING = "starting"  # agents are spawning the ranks
    RUNNING = "running"
    STOPPING = "stopping"  # a stop (asked for, or fail-fast) is under way
    RESTARTING = "restarting"  # an attempt failed; the monitor relaunches it (--max-restarts, --resume)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"

    def is_terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.STOPPED)


# Allowed moves; any state may also move to FAILED, and a state to itself.
_NEXT = {
    JobState.PENDING: {JobState.STAGING, JobState.STOPPED},
    JobState.STAGING: {JobState.STARTING, JobState.STOPPED},
    JobState.STARTING: {JobState.RUNNING, JobState.STOPPING, JobState.SUCCEEDED, JobState.STOPPED},
    JobState.RUNNING: {JobState.STOPPING, JobState.SUCCEEDED, JobState.STOPPED},
    JobState.STOPPING: {JobState.STOPPED, JobState.RESTARTING},
    JobState.RESTARTING: {JobState.STAGING, JobState.STOPPED},
}
# The one way out of a terminal state: ``launch --resume`` reopens a failed or stopped job.
REOPENABLE = (JobState.FAILED, JobState.STOPPED)


def can_move(old: JobState, new: JobState, reopen: bool = False) -> bool:
    """True if a job may go from ``old`` to ``new``; a terminal state is only left by ``reopen``
    (a failed or stopped job resumed by hand moves to RESTARTING)."""
    if old.is_terminal():
        return old == new or (reopen and old in REOPENABLE and new == JobState.RESTARTING)
    return new in (old, JobState.FAILED) or new in _NEXT.get(old, set())


def move(old: JobState, new: JobState) -> JobState:
    """``new``, or ValueError naming the illegal move."""
    if not can_move(old, new):
        raise ValueError(f"a job cannot go from {old.value} to {new.value}")
    return new


@dataclass(frozen=True)
class Progress:
    """Training progress of one rank, parsed from its MindFormers log by the agent."""

    step: int  # global step done (over epochs)
    total_steps: int
    loss: Optional[float] = None
    per_step_ms: Optional[float] = None
    tokens_per_s: Optional[float] = None
    eta_s: Optional[float] = None


@dataclass(frozen=True)
class EvalResult:
    """What an eval job measured (the model package's ``eval:`` line): token-weighted mean loss over
    the eval dataset, its perplexity, and how many rows and loss tokens it scored."""

    loss: float
    perplexity: float
    rows: int
    tokens: int

    def __str__(self) -> str:
        return (f"eval: loss {self.loss:.4f}, perplexity {self.perplexity:.4f} "
                f"({self.rows} rows, {self.tokens} tokens)")  # fmt: skip


@dataclass(frozen=True)
class RankStatus:
    """One process of a job on a node: a rank or the dynamic-cluster scheduler (``rank`` None)."""

    host: str
    name: str  # rank-<R> | scheduler
    rank: Optional[int]
    state: str  # running | exited | not-started | exiting | lost | unknown
    pid: Optional[int] = None
    exit_code: Optional[int] = None
    signal: Optional[str] = None
    killed_by_agent: bool = False
    started: Optional[float] = None
    ended: Optional[float] = None
    cpu_percent: Optional[float] = None
    rss_bytes: Optional[int] = None
    log: str = ""
    log_tail: tuple[str, ...] = ()
    progress: Optional[Progress] = None
    result: Optional[EvalResult] = None  # an eval rank's result line

    @property
    def failed(self) -> bool:
        return self.exit_code not in (None, 0)


@dataclass(frozen=True)
class NodeStatus:
    """One node as last seen: the agent's job state, or why it did not answer."""

    host: str
    reachable: bool
    agent_state: str  # the agent's: starting | running | stopping | succeeded | failed | stopped | unknown
    last_seen: Optional[float] = None  # time of the last answer
    error: str = ""
    ranks: tuple[RankStatus, ...] = ()


@dataclass(frozen=True)
class RootCause:
    """Why a job failed: the first rank that failed on its own, or the node that went silent."""

    host: str
    what: str  # rank-<R> | scheduler | node
    rank: Optional[int]
    exit_code: Optional[int]
    reason: str  # one line
    time: Optional[float] = None
    log_tail: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.what} on {self.host}: {self.reason}"


@dataclass(frozen=True)
class JobStatus:
    """A whole job at one moment."""

    job_id: str
    task: str
    state: JobState
    time: float
    started: Optional[float] = None
    ended: Optional[float] = None
    nodes: tuple[NodeStatus, ...] = ()
    root_cause: Optional[RootCause] = None
    message: str = ""
    monitor_alive: Optional[bool] = None
    attempt: int = 1  # 1 + restarts so far
    max_attempts: int = 1  # 1 + --max-restarts (a resume by hand adds its own)
    resumed_from: Optional[int] = None  # global step this attempt resumed from; None: from scratch
    logs_index: Optional[str] = None  # INDEX.md of the logs collected after the last failure
    result: Optional[EvalResult] = None  # an eval job's result: the lowest rank's (all ranks score all rows)

    @property
    def ranks(self) -> tuple[RankStatus, ...]:
        return tuple(r for n in self.nodes for r in n.ranks)

    def attempt_fields(self) -> dict[str, Any]:
        """The attempt bookkeeping that a new snapshot of the same attempt carries over."""
        return {"attempt": self.attempt, "max_attempts": self.max_attempts,
                "resumed_from": self.resumed_from, "logs_index": self.logs_index}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobStatus:
        def rank(r: dict[str, Any]) -> RankStatus:
            prog, res = r.get("progress"), r.get("result")
            return RankStatus(**dict(r, log_tail=tuple(r.get("log_tail") or ()),
                                     progress=Progress(**prog) if prog else None,
                                     result=EvalResult(**res) if res else None))  # fmt: skip

        nodes = tuple(
            NodeStatus(**dict(n, ranks=tuple(rank(r) for r in n.get("ranks", ())))) for n in data["nodes"]
        )
        cause, result = data.get("root_cause"), data.get("result")
        return cls(**dict(data, state=JobState(data["state"]), nodes=nodes,
                          root_cause=RootCause(**dict(cause, log_tail=tuple(cause["log_tail"]))) if cause else None,
                          result=EvalResult(**result) if result else None))  # fmt: skip


@dataclass(frozen=True)
class Overall:
    """Progress of the whole job: the slowest rank's step against the total, and the longest ETA."""

    step: int
    total_steps: int
    eta_s: Optional[float]
    tokens_per_s: Optional[float]
    ranks_running: int
    ranks_total: int

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0


def eta_seconds(step: int, total: int, per_step_ms: Optional[float]) -> Optional[float]:
    """Seconds left at ``per_step_ms`` per step (None when the step time is unknown)."""
    if per_step_ms is None or total <= 0:
        return None
    return max(0, total - step) * per_step_ms / 1000.0


def job_result(nodes: Sequence[NodeStatus]) -> Optional[EvalResult]:
    """The result of the lowest worker rank that printed one (None when no rank has)."""
    found = sorted((r.rank, r.result) for n in nodes for r in n.ranks if r.rank is not None and r.result)
    return found[0][1] if found else None


def overall(status: JobStatus) -> Overall:
    """The job's overall progress from its workers' progress (the scheduler has none)."""
    workers = [r for r in status.ranks if r.rank is not None]
    progs = [r.progress for r in workers if r.progress is not None]
    running = sum(1 for r in workers if r.state == "running")
    if not progs:
        return Overall(0, 0, None, None, running, len(workers))
    total = max(p.total_steps for p in progs)
    step = min(p.step for p in progs) if len(progs) == len(workers) else 0
    etas = [
        p.eta_s if p.eta_s is not None else eta_seconds(p.step, p.total_steps, p.per_step_ms) for p in progs
    ]
    known = [e for e in etas if e is not None]
    tokens = [p.tokens_per_s for p in progs if p.tokens_per_s is not None]
    return Overall(
        step, total, max(known) if known else None, sum(tokens) if tokens else None, running, len(workers)
    )
