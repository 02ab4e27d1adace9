"""What a finished job did, in a few lines: loss first → last, throughput, where its checkpoints are.

Losses come from every rank's whole log (read once from each node, parsed by the same loss-line parser
as ``loss.png``); throughput from the job's last status; the checkpoint folder from its plan.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Optional

from orchestrator.collect.lossplot import loss_points
from orchestrator.jobs.model import overall
from orchestrator.jobs.state import JobDir
from orchestrator.launch import logs
from orchestrator.launch.nodes import JobNodes


@dataclass(frozen=True)
class RankLoss:
    """One rank's first and last logged (step, loss)."""

    host: str
    name: str
    first_step: int
    first_loss: float
    last_step: int
    last_loss: float


@dataclass(frozen=True)
class JobReport:
    job_id: str
    task: str
    state: str
    steps: int
    total_steps: int
    tokens_per_s: Optional[float]
    ranks: tuple[RankLoss, ...]
    checkpoints: tuple[tuple[str, str], ...]  # (host, folder holding rank_N/)

    @property
    def first_loss(self) -> Optional[float]:
        return statistics.fmean(r.first_loss for r in self.ranks) if self.ranks else None

    @property
    def last_loss(self) -> Optional[float]:
        return statistics.fmean(r.last_loss for r in self.ranks) if self.ranks else None

    @property
    def loss_drop(self) -> Optional[float]:
        """How much of the first loss is gone by the last step (0.4 = fell by 40%)."""
        if self.first_loss is None or self.last_loss is None or self.first_loss <= 0:
            return None
        return 1.0 - self.last_loss / self.first_loss

    def to_dict(self) -> dict:
        return {**asdict(self), "first_loss": self.first_loss, "last_loss": self.last_loss,
                "loss_drop": self.loss_drop}  # fmt: skip


def _rank_losses(jd: JobDir) -> tuple[RankLoss, ...]:
    record = jd.record()
    procs = [p for p in record.processes if p.rank is not None]
    with JobNodes(record.nodes) as nodes:
        chunks, _errors = logs.read_logs(nodes, procs, {p.log: 0 for p in procs})
    out = []
    for chunk in chunks:
        points = loss_points(chunk.text.splitlines())
        if points:
            (s0, l0), (s1, l1) = points[0], points[-1]
            out.append(RankLoss(chunk.proc.host, chunk.proc.name, s0, l0, s1, l1))
    return tuple(out)


def job_report(jd: JobDir) -> JobReport:
    """The report of job ``jd`` (its nodes are asked for the rank logs once, in parallel)."""
    from orchestrator.reshard.strategy_files import node_output_dir

    status = jd.status()
    plan = jd.plan()
    o = overall(status) if status else None
    return JobReport(
        job_id=jd.job_id,
        task=status.task if status else plan.task,
        state=status.state.value if status else "unknown",
        steps=o.step if o else 0,
        total_steps=o.total_steps if o else 0,
        tokens_per_s=o.tokens_per_s if o else None,
        ranks=_rank_losses(jd),
        checkpoints=tuple((n.host, f"{node_output_dir(n)}/checkpoint") for n in plan.nodes),
    )


def render_report(r: JobReport, next_steps: tuple[str, ...] = ()) -> str:
    """The report as text: a headline, the loss per rank, checkpoints, then ``next_steps``."""
    lines = [f"job {r.job_id} ({r.task}) {r.state}: {r.steps}/{r.total_steps} steps"]
    if r.first_loss is not None and r.last_loss is not None:
        drop = f" (fell by {r.loss_drop:.0%})" if r.loss_drop is not None else ""
        lines.append(f"loss {r.first_loss:.3f} → {r.last_loss:.3f}{drop}, mean of {len(r.ranks)} rank(s)")
        lines += [f"  {x.host} {x.name}: step {x.first_step} {x.first_loss:.3f} → step {x.last_step} "
                  f"{x.last_loss:.3f}" for x in r.ranks]  # fmt: skip
    else:
        lines.append("no loss lines in the rank logs")
    if r.tokens_per_s is not None:
        lines.append(f"throughput {r.tokens_per_s:.0f} tokens/s (all ranks, last step)")
    lines += [f"checkpoints on {host}: {path}/rank_N/" for host, path in r.checkpoints]
    if next_steps:
        lines.append("next:")
        lines += [f"  {s}" for s in next_steps]
    return "\n".join(lines)
