"""The local state folder of every job: ``~/.orchestrate/jobs/<job_id>/`` (0700, files 0600).

Holds ``job.json`` (the record: task, nodes with their SSH settings, where the agent lives on each,
what each rank runs and logs to), ``plan/`` (a copy of the plan folder), ``node-env.json`` (each
node's sourced CANN environment, ``launch.node_env``), ``events.jsonl``,
``status.json`` (the latest snapshot), ``monitor.pid``/``monitor.log`` (the detached monitor) and
``stop-requested``. ``ORCHESTRATE_HOME`` moves the root (tests).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from orchestrator.errors import InputError, Problem
from orchestrator.inventory.model import NodeSpec, SshSettings
from orchestrator.jobs.events import append_event
from orchestrator.jobs.model import JobStatus, can_move
from orchestrator.slurm.settings import SlurmRoute


def home() -> Path:
    return Path(os.environ.get("ORCHESTRATE_HOME") or Path.home() / ".orchestrate")


def jobs_root() -> Path:
    return home() / "jobs"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically to ``path`` with mode 0600."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def make_private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


@dataclass(frozen=True)
class ProcessRef:
    """One process of the job: where it runs and logs."""

    host: str
    name: str  # rank-<R> | scheduler (the agent's names)
    rank: Optional[int]
    log: str


@dataclass(frozen=True)
class JobRecord:
    """What the controller needs to reach, watch and stop a job later, without the inventory."""

    job_id: str
    task: str
    created: float
    inventory_source: str
    nodes: tuple[NodeSpec, ...]
    agent_path: tuple[tuple[str, str], ...]  # host -> node_agent.py path on that node
    agent_workdir: tuple[tuple[str, str], ...]  # host -> the agent's --workdir on that node
    processes: tuple[ProcessRef, ...]
    heartbeat_s: float
    failure_detect_s: float
    stop_grace_s: float
    shared_paths: tuple[str, ...] = ()  # the inventory's shared storage (restarts stage inputs alike)

    def agent(self, host: str) -> tuple[str, str]:
        """(agent path, agent workdir) on ``host``."""
        return dict(self.agent_path)[host], dict(self.agent_workdir)[host]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> JobRecord:
        d = json.loads(text)

        def node(n: dict[str, Any]) -> NodeSpec:
            pairs = tuple(tuple(p) for p in n["env"])
            route = SlurmRoute(**n["slurm"]) if n.get("slurm") else None
            return NodeSpec(**dict(n, ssh=SshSettings(**n["ssh"]), devices=tuple(n["devices"]),
                                   device_ips=tuple(n["device_ips"]), env=pairs, slurm=route))  # fmt: skip

        return cls(**dict(
            d, nodes=tuple(node(n) for n in d["nodes"]),
            agent_path=tuple(tuple(p) for p in d["agent_path"]),
            agent_workdir=tuple(tuple(p) for p in d["agent_workdir"]),
            processes=tuple(ProcessRef(**p) for p in d["processes"]),
            shared_paths=tuple(d.get("shared_paths", ())),
        ))  # fmt: skip


class JobDir:
    """One job's state folder."""

    def __init__(self, job_id: str, root: Optional[Path] = None):
        self.job_id = job_id
        self.path = (root or jobs_root()) / job_id

    def create(self) -> JobDir:
        make_private_dir(self.path.parent)
        make_private_dir(self.path)
        return self

    def exists(self) -> bool:
        return (self.path / "job.json").exists()

    def write(self, name: str, text: str) -> Path:
        path = self.path / name
        write_private(path, text)
        return path

    def read(self, name: str) -> Optional[str]:
        try:
            return (self.path / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    # -- the record and snapshots --------------------------------------------------------------------
    def save_record(self, record: JobRecord) -> None:
        self.write("job.json", record.to_json())

    def record(self) -> JobRecord:
        text = self.read("job.json")
        if text is None:
            raise InputError(
                [Problem(str(self.path), "job", f"no job {self.job_id}", "see `orchestrate jobs`")]
            )
        return JobRecord.from_json(text)

    def save_status(self, status: JobStatus, reopen: bool = False) -> bool:
        """Write the snapshot unless it would make an illegal move (e.g. leave a terminal state;
        ``reopen``: a resume by hand may take a failed or stopped job to RESTARTING)."""
        prev = self.status()
        if prev is not None and not can_move(prev.state, status.state, reopen):
            append_event(self.path, "illegal-move", old=prev.state.value, new=status.state.value)
            return False
        self.write("status.json", json.dumps(status.to_dict(), indent=1, sort_keys=True, default=str) + "\n")
        return True

    def status(self) -> Optional[JobStatus]:
        text = self.read("status.json")
        return JobStatus.from_dict(json.loads(text)) if text else None

    def save_plan(self, plan: Any, name: str = "plan") -> None:
        """A private copy of a plan folder: ``plan/`` is what the nodes run (bound to this job by
        ``launch.binding``), ``base-plan/`` the plan as made, which each attempt is bound from."""
        from orchestrator.plan.plan_io import write_plan

        out = make_private_dir(self.path / name)
        write_plan(plan, out)
        for p in out.rglob("*"):
            p.chmod(0o700 if p.is_dir() else 0o600)

    def plan(self, name: str = "plan") -> Any:
        from orchestrator.plan.plan_io import load_plan

        return load_plan(self.path / name)

    # -- the monitor and stop requests ------------------------------------------------------------
    def monitor_pid(self) -> Optional[int]:
        text = self.read("monitor.pid")
        return int(text) if text and text.strip().isdigit() else None

    def stop_requested(self) -> bool:
        return (self.path / "stop-requested").exists()


def list_jobs(root: Optional[Path] = None) -> list[str]:
    """Ids of every recorded job, oldest first (ids sort by start time)."""
    base = root or jobs_root()
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / "job.json").exists())


def unfinished_jobs(root: Optional[Path] = None) -> list[str]:
    """Ids of the recorded jobs whose last snapshot is not terminal (running, starting, ...), oldest first;
    several can run at once on disjoint NPUs of the same nodes."""
    out = []
    for job in list_jobs(root):
        try:
            status = JobDir(job, root).status()
        except (OSError, ValueError, KeyError):
            continue
        if status is not None and not status.state.is_terminal():
            out.append(job)
    return out


def resolve_to_stop(job_id: Optional[str], root: Optional[Path] = None) -> JobDir:
    """The job ``stop`` means: the named one; without a name the one unfinished job (else the latest job).
    With several unfinished jobs and no name, InputError naming them: a stop is never a guess."""
    if job_id is not None:
        return resolve_job(job_id, root)
    live = unfinished_jobs(root)
    if len(live) > 1:
        raise InputError([Problem(str(root or jobs_root()), "job", f"{len(live)} jobs are running: {', '.join(live)}",
                                  "name the one to stop: `orchestrate stop JOB` (an id, unique prefix or suffix)")])  # fmt: skip
    return JobDir(live[0], root) if live else resolve_job(None, root)


def resolve_job(job_id: Optional[str], root: Optional[Path] = None) -> JobDir:
    """The named job, or the latest one; InputError when there is none."""
    jobs = list_jobs(root)
    if job_id is None:
        if not jobs:
            raise InputError(
                [Problem(str(root or jobs_root()), "job", "no jobs yet", "run `orchestrate launch`")]
            )
        return JobDir(jobs[-1], root)
    matches = [j for j in jobs if j == job_id] or [
        j for j in jobs if j.startswith(job_id) or j.endswith(job_id)
    ]
    if len(matches) != 1:
        what = "no job" if not matches else f"{len(matches)} jobs match"
        raise InputError(
            [Problem(str(root or jobs_root()), "job", f"{what} {job_id!r}", "see `orchestrate jobs`")]
        )
    return JobDir(matches[0], root)
