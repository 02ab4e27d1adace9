"""The recent-jobs list (``orchestrate jobs``): one row per job from its state folder, newest first."""

from __future__ import annotations

from typing import Any, Optional

from rich.table import Table

from orchestrator.jobs.state import JobDir, list_jobs
from orchestrator.launch.live import STYLES, fmt_duration
from orchestrator.launch.watch_process import monitor_alive


def job_row(job: JobDir) -> dict[str, Any]:
    record, status = job.record(), job.status()
    end = (status.ended or status.time) if status else None
    return {
        "job_id": job.job_id,
        "task": record.task,
        "state": status.state.value if status else "unknown",
        "nodes": len(record.nodes),
        "ranks": sum(1 for p in record.processes if p.rank is not None),
        "started": record.created,
        "duration_s": round(end - record.created, 1) if end else None,
        "root_cause": str(status.root_cause) if status and status.root_cause else None,
        "attempts": f"{status.attempt}/{status.max_attempts}" if status else "1/1",
        "resumed_from": status.resumed_from if status else None,
        "logs_index": status.logs_index if status else None,
        "monitor": monitor_alive(job),
        "folder": str(job.path),
    }


def job_rows(limit: int = 20, root: Optional[Any] = None) -> list[dict[str, Any]]:
    return [job_row(JobDir(j, root)) for j in reversed(list_jobs(root)[-limit:])]


def jobs_table(rows: list[dict[str, Any]], whole: bool = False) -> Table:
    """The table of ``rows``; a terminal's (``whole`` False) cuts a root cause at 120 characters."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    # the job id already says when and what (<date>-<time>-<task>-<suffix>), so no task/started columns;
    # the identifying columns never wrap or shrink, the root cause takes the width that is left
    for col in ("job", "state", "attempt", "ranks", "duration"):
        table.add_column(col, no_wrap=True, min_width=len(col))
    table.add_column("root cause", overflow="fold", ratio=1)
    for r in rows:
        attempt = r["attempts"] + (
            f" (from step {r['resumed_from']})" if r["resumed_from"] is not None else ""
        )
        ranks = f"{r['ranks']} on {r['nodes']} node{'s' if r['nodes'] != 1 else ''}"
        cause = r["root_cause"] or ""
        table.add_row(r["job_id"], f"[{STYLES.get(r['state'], '')}]{r['state']}[/]", attempt, ranks,
                      fmt_duration(r["duration_s"]), cause if whole else cause[:120])  # fmt: skip
    return table
