"""The plan's typed output: what each node gets and what each rank runs. Written as plan.json.

Every field is plain data (str, int, float, bool, tuples, nested dataclasses), so a Plan converts to
JSON and back without loss (``plan_io``). Node-side paths are absolute paths on that node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from orchestrator.plan.job import JobOptions
from orchestrator.plan.loading import CheckpointLoad
from orchestrator.plan.memory import MemoryEstimate
from orchestrator.plan.model_presets import ModelPreset
from orchestrator.plan.strategy import Strategy
from orchestrator.plan.timeouts import Timeouts

SCHEMA = "orchestrate.plan/1"
Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RankLaunch:
    """One process: a worker (``rank`` set) or the dynamic-cluster scheduler (``rank`` None)."""

    role: str  # "worker" | "scheduler"
    rank: Optional[int]
    host: str
    device_id: Optional[int]
    env: Pairs  # the complete environment the plan sets, sorted by name
    argv: tuple[str, ...]
    cwd: str
    log_dir: str  # MindFormers' output/log/rank_<R>/ (scheduler: output/log/scheduler/)
    stdout: str  # where the process's stdout and stderr go

    @property
    def name(self) -> str:
        return f"rank_{self.rank}" if self.rank is not None else "scheduler"


@dataclass(frozen=True)
class Transfer:
    """One file or folder to put on a node. ``kind``: ``generated`` (``source`` relative to the plan
    folder) or ``input`` (a controller path; a folder is copied whole)."""

    host: str
    kind: str
    source: str
    dest: str
    mode: int = 0o644


@dataclass(frozen=True)
class NodePlan:
    """Everything one node receives and runs. ``ascend_root``: the node's Ascend install root, whose
    CANN scripts every rank's environment is sourced from (None: no CANN, the ``cpu`` profile)."""

    host: str
    name: Optional[str]
    local: bool
    python: str
    job_dir: str
    devices: tuple[int, ...]
    ranks: tuple[int, ...]  # aligned with ``devices``, from the merged rank table
    yaml_name: str
    yaml_text: str
    rank_table_text: str  # this node's own table (ranks from 0), as hccl_tools would write it
    launches: tuple[RankLaunch, ...]  # the scheduler first when this node hosts it, then ranks in order
    ascend_root: Optional[str] = None


@dataclass(frozen=True)
class Plan:
    """A complete, reviewable job plan; ``make_plan`` builds it, ``write_plan`` writes the folder."""

    schema: str
    cluster: str
    profile: str
    task: str
    run_mode: str
    inventory_source: str
    launch_mode: str  # "rank_table" | "dynamic_cluster"
    world_size: int
    model: ModelPreset
    job: JobOptions
    strategy: Strategy
    memory: MemoryEstimate
    timeouts: Timeouts
    overrides: tuple[str, ...]  # as given, inventory job.set first
    rank_table_text: str
    scheduler_host: Optional[str]
    sched_port: Optional[int]
    nodes: tuple[NodePlan, ...]  # in rank order (string order of server_id)
    transfers: tuple[Transfer, ...]
    warnings: tuple[str, ...] = ()
    checkpoint: Optional[CheckpointLoad] = None  # how the ranks load job.load_checkpoint, and why
    notes: tuple[str, ...] = ()  # decisions a reviewer should read (not problems): the checkpoint's case

    def node(self, host: str) -> NodePlan:
        for n in self.nodes:
            if n.host == host:
                return n
        raise KeyError(f"no node {host!r} in the plan; hosts: {', '.join(n.host for n in self.nodes)}")

    def launches(self) -> tuple[RankLaunch, ...]:
        """Every process of the job, node by node (scheduler first on its node)."""
        return tuple(launch for n in self.nodes for launch in n.launches)

    @property
    def scheduler(self) -> Optional[RankLaunch]:
        """The dynamic-cluster scheduler's launch, None in rank-table mode."""
        return next((x for x in self.launches() if x.role == "scheduler"), None)
