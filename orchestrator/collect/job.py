"""``collect_job_logs``: everything of one job, from every node and this machine, into one folder.

``collect_job_logs`` never raises for an unreachable node (the result and the index say which).
``collect_after_failure`` is the hook the monitor calls once a job is marked failed: it never raises.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from orchestrator.collect import layout
from orchestrator.collect.gather import MAX_NODE_BYTES, NodeCollect, gather
from orchestrator.collect.index import CauseEntry, Index, build_index, write_index
from orchestrator.collect.lossplot import plot_losses, read_loss
from orchestrator.jobs.events import append_event
from orchestrator.jobs.state import JobDir, make_private_dir, resolve_job
from orchestrator.launch import node_env
from orchestrator.launch.nodes import JobNodes

CONTROLLER_FILES = ("job.json", "status.json", "events.jsonl", "monitor.log", node_env.STATE_FILE)


@dataclass(frozen=True)
class CollectResult:
    """Where a job's logs went and what the index says."""

    job_id: str
    folder: Path  # <out>/<job>
    index_md: Path
    index_json: Path
    loss_png: Optional[Path]
    nodes: dict[str, NodeCollect]
    index: Index

    @property
    def ok(self) -> bool:
        """True when every node was collected."""
        return all(c.ok for c in self.nodes.values())

    @property
    def errors(self) -> dict[str, str]:
        return {h: c.error for h, c in self.nodes.items() if not c.ok}

    @property
    def root_cause(self) -> Optional[CauseEntry]:
        return self.index.root_cause


def _copy_local(job: JobDir, root: Path, plan_hosts: list[str]) -> None:
    """The job's local state and its plan copy; each node's part of the plan into its own folder."""
    ctl = make_private_dir(root / layout.CONTROLLER)
    for name in CONTROLLER_FILES:
        if (job.path / name).exists():
            shutil.copy2(job.path / name, ctl / name)
    plan = job.path / "plan"
    if plan.is_dir():
        shutil.copytree(plan, root / layout.PLAN, dirs_exist_ok=True)
        for host in plan_hosts:
            part = plan / "nodes" / host
            if part.is_dir():
                shutil.copytree(part, layout.host_dir(root, host) / layout.PLAN, dirs_exist_ok=True)


def _loss_plot(ix: Index, root: Path) -> Optional[Path]:
    series = {
        f"{r.name} ({r.host})": read_loss(root / r.log) for r in ix.ranks if r.rank is not None and r.log
    }
    c = ix.root_cause
    failed_at = None
    if c is not None and c.rank is not None:
        label = f"{c.what} ({c.host})"
        if series.get(label):
            failed_at = (c.what, series[label][-1][0])
    title = f"{ix.job_id} ({ix.task}, {ix.state})"
    return plot_losses(series, root / layout.LOSS_PNG, title, failed_at)


def collect_job_logs(job: Union[str, JobDir, None] = None, out_dir: Optional[Path] = None, *,
                     nodes: Optional[JobNodes] = None, timeout: float = 600,
                     max_node_bytes: int = MAX_NODE_BYTES) -> CollectResult:  # fmt: skip
    """Collect ``job`` (an id, a unique prefix/suffix, a JobDir; None: the latest) into ``<out_dir>/<job>/``.

    From every node at once: rank and scheduler logs, the agent's records, CANN plogs, rendered
    configs, the rank table and npu-smi/hccn_tool snapshots; from here: the job's state and plan.
    Then ``INDEX.md``/``index.json`` (root cause and error lines) and ``loss.png``. ``nodes`` reuses
    open connections (the monitor's). Nothing on the nodes is changed. ``max_node_bytes`` caps what is
    taken from one node's files (what would pass it is left out and listed in INDEX.md).
    """
    jd = job if isinstance(job, JobDir) else resolve_job(job)
    record, status = jd.record(), jd.status()
    try:
        plan = jd.plan()
    except (OSError, ValueError, KeyError):
        plan = None
    plans = {n.host: n for n in plan.nodes} if plan is not None else {}
    root = make_private_dir(layout.job_root(Path(out_dir) if out_dir else None, jd.job_id))
    own = nodes is None
    nodes = nodes or JobNodes(record.nodes)
    try:
        collected = gather(record, plans, root, nodes.fan, timeout, max_node_bytes)
    finally:
        if own:
            nodes.close()
    _copy_local(jd, root, list(plans))
    ix = build_index(record, status, collected, root)
    png = _loss_plot(ix, root)
    ix = dataclasses.replace(ix, loss_plot=png.relative_to(root).as_posix() if png else None)
    md, js = write_index(ix, root)
    append_event(
        jd.path,
        "logs-collected",
        out=str(root),
        errors={h: c.error for h, c in collected.items() if not c.ok},
    )
    return CollectResult(jd.job_id, root, md, js, png, collected, ix)


def collect_after_failure(job: JobDir, nodes: Optional[JobNodes] = None) -> Optional[CollectResult]:
    """Collect a failed job into the default folder; any error becomes a ``logs-collect-failed`` event."""
    try:
        return collect_job_logs(job, nodes=nodes)
    except Exception as exc:  # the job's outcome is already recorded: collecting is best effort
        append_event(job.path, "logs-collect-failed", error=f"{type(exc).__name__}: {exc}")
        return None
