"""The offline resharding flow for jobs MindFormers will not reshard itself (docs/ascend-cluster.md §4).

With more than 8 devices, ``auto_trans_ckpt`` needs ``output_dir`` on shared storage. Without it:

1. strategy run: the same job with ``only_save_strategy: True`` (no checkpoint loaded); each rank
   writes ``<output_dir>/strategy/ckpt_strategy_rank_<R>.ckpt`` on its node and the job stops;
2. gather: those files to the controller (``<work>/strategy/``);
3. transform: the source checkpoint to the job's layout, offline (``<work>/transformed/rank_<R>/``);
4. push: each node gets only the rank folders of the ranks it runs;
5. launch: the job with ``auto_trans_ckpt: False`` and ``load_checkpoint`` at the pushed folder.

``plan_flow`` is pure and builds both plans and the steps as data (``render`` prints them: the dry
run). ``gather``, ``transform`` and ``push_shards`` execute steps 2-4; the launch runs the two plans.
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional, Sequence

from orchestrator.errors import InputError, Problem
from orchestrator.plan import Plan, make_plan
from orchestrator.reshard.needs import node_ranks, shard_targets
from orchestrator.reshard.strategy_files import STRATEGY_DIR, node_output_dir, strategy_name

AUTO_TRANS_MAX_DEVICES = 8  # MindFormers reshards on the fly without shared storage up to one node


@dataclass(frozen=True)
class FlowStep:
    """One step: a name, what it does, and the exact paths or commands (one per line)."""

    number: int
    name: str
    summary: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class OfflineFlow:
    """Everything the five steps need; ``final_plan`` no longer ships the checkpoint folder whole."""

    checkpoint: str  # controller path of the source checkpoint (complete file or rank folders)
    source_strategy: Optional[str]  # strategy files of a sharded source, None for a complete one
    work: str  # controller folder of the flow: strategy/ and transformed/
    requested: Plan  # the job as asked for (auto_trans_ckpt as the user set it)
    strategy_plan: Plan
    final_plan: Plan
    dest: tuple[tuple[str, str], ...]  # (host, node path of load_checkpoint)
    steps: tuple[FlowStep, ...]

    @property
    def strategy_dir(self) -> Path:
        return Path(self.work) / STRATEGY_DIR

    @property
    def transformed(self) -> Path:
        return Path(self.work) / "transformed"


def _under(path: str, roots: Sequence[str]) -> bool:
    norm = posixpath.normpath(path)
    return any(norm == r.rstrip("/") or norm.startswith(r.rstrip("/") + "/") for r in roots)


def needs_offline(plan: Plan, shared_paths: Sequence[str]) -> bool:
    """True when ``plan`` loads a checkpoint MindFormers would reshard, on more than 8 devices, with
    output_dir not on shared storage: the case MindFormers refuses."""
    if plan.checkpoint is not None:  # the planner's decision (plan.loading)
        auto = plan.checkpoint.auto_trans_ckpt
    else:
        auto = plan.job.auto_trans_ckpt
        auto = plan.strategy.training and bool(plan.job.load_checkpoint) if auto is None else auto
    if not (auto and plan.job.load_checkpoint and plan.world_size > AUTO_TRANS_MAX_DEVICES):
        return False
    return not all(_under(node_output_dir(n), shared_paths) for n in plan.nodes)


def _steps(flow: OfflineFlow, python: str) -> tuple[FlowStep, ...]:
    sp, fp = flow.strategy_plan, flow.final_plan
    files = [f"{n.host}: {node_output_dir(n)}/{STRATEGY_DIR}/{strategy_name(n.ranks[0])}"
             + (f" .. {strategy_name(n.ranks[-1])}" if len(n.ranks) > 1 else "") for n in sp.nodes]  # fmt: skip
    cmd = [python, "-m", "orchestrator.reshard.offline", "transform", flow.checkpoint, str(flow.transformed),
           "--dst-strategy", str(flow.strategy_dir)]  # fmt: skip
    if flow.source_strategy:
        cmd += ["--src-strategy", flow.source_strategy]
    dest = dict(flow.dest)
    pushes = [f"{host} <- rank_{ranks[0]} .. rank_{ranks[-1]} -> {dest[host]}" if len(ranks) > 1
              else f"{host} <- rank_{ranks[0]} -> {dest[host]}" for host, ranks in node_ranks(fp).items()]  # fmt: skip
    layout = f"dp{fp.strategy.dp} mp{fp.strategy.mp} pp{fp.strategy.pp}"
    return (
        FlowStep(
            1,
            "strategy-run",
            f"launch {sp.task} on {sp.world_size} devices with only_save_strategy: "
            "True and no checkpoint; it stops after saving the strategy",
            tuple(files),
        ),
        FlowStep(2, "gather", f"copy the strategy files to {flow.strategy_dir}/"),
        FlowStep(
            3,
            "transform",
            f"reshard {flow.checkpoint} to {layout} in {flow.transformed}/",
            (" ".join(shlex.quote(c) for c in cmd),),
        ),
        FlowStep(4, "push", "each node gets only the rank folders it runs", tuple(pushes)),
        FlowStep(
            5,
            "launch",
            f"launch {fp.task} with auto_trans_ckpt: False, load_checkpoint on each node:",
            tuple(f"{h}: {d}" for h, d in flow.dest),
        ),
    )


def plan_flow(inventory: Any, task: str, overrides: Sequence[str], work: Path, checkpoint: Optional[str] = None,
              source_strategy: Optional[str] = None, discovered: Optional[Any] = None, python: str = "python") -> OfflineFlow:  # fmt: skip
    """Both plans and the five steps for ``task`` (pure: nothing is touched). ``checkpoint`` defaults to
    the job's ``load_checkpoint``."""
    base = make_plan(inventory, task, overrides, discovered)
    source = checkpoint or base.job.load_checkpoint
    if not source:
        raise InputError([Problem(inventory.source, "job.load_checkpoint", "the offline flow reshards a checkpoint "
                                  "and none is given", "set job.load_checkpoint or pass --checkpoint")])  # fmt: skip
    strategy_sets = ["job.only_save_strategy=true", "job.auto_trans_ckpt=false", "job.load_checkpoint="]
    strategy_plan = make_plan(inventory, task, [*overrides, *strategy_sets], discovered)
    transformed = str(Path(work) / "transformed")
    final = make_plan(inventory, task, [*overrides, "job.auto_trans_ckpt=false", f"job.load_checkpoint={transformed}"],
                      discovered)  # fmt: skip
    ours = [t for t in final.transfers if t.kind == "input" and t.source == transformed]
    dest = tuple((t.host, t.dest) for t in ours)
    if not dest:  # the work folder lies on a shared path: the nodes read it in place
        dest = tuple((n.host, transformed) for n in final.nodes)
    final = replace(final, transfers=tuple(t for t in final.transfers if t not in ours))
    flow = OfflineFlow(str(source), source_strategy, str(work), base, strategy_plan, final, dest, ())
    return replace(flow, steps=_steps(flow, python))


def render(flow: OfflineFlow) -> str:
    """The dry run: every step with its paths and commands."""
    fp = flow.final_plan
    lines = [f"offline resharding for {fp.task} on {fp.world_size} devices "
             f"(MindFormers reshards on the fly without shared storage only up to {AUTO_TRANS_MAX_DEVICES})"]  # fmt: skip
    for step in flow.steps:
        lines.append(f"{step.number}. {step.name}: {step.summary}")
        lines += [f"     {d}" for d in step.details]
    return "\n".join(lines) + "\n"


def gather(flow: OfflineFlow, nodes: Sequence[Any], pool: Any = None) -> dict[int, Path]:
    """Step 2: the strategy run's files from every node into ``flow.strategy_dir``."""
    from orchestrator.reshard.pull import pull_strategies
    from orchestrator.reshard.strategy_files import check_strategy_files

    files = pull_strategies(flow.strategy_plan, nodes, Path(flow.work), pool)
    check_strategy_files(files, flow.strategy_plan.world_size, str(flow.strategy_dir))
    return files


def transform(flow: OfflineFlow) -> dict[int, Path]:
    """Step 3: reshard the source checkpoint into ``flow.transformed`` for the gathered strategy."""
    from orchestrator.reshard.needs import check_shards
    from orchestrator.reshard.transform import reshard

    strategy = Path(flow.source_strategy) if flow.source_strategy else None
    files = reshard(Path(flow.checkpoint), flow.transformed, flow.strategy_dir, strategy=strategy)
    check_shards(list(files), flow.final_plan, str(flow.transformed))
    return files


def push_shards(flow: OfflineFlow, nodes: Sequence[Any], options: Any = None) -> Any:
    """Step 4: each node's own rank folders to its ``load_checkpoint`` path; the PushResult, checked."""
    from orchestrator.transfer import PushOptions, push

    targets = shard_targets(flow.final_plan, nodes, flow.transformed, dict(flow.dest))
    return push(targets, options or PushOptions()).check()
