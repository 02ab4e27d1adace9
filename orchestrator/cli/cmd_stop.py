"""`orchestrate stop [JOB] [--grace S]`: stop every rank on every node and confirm nothing is left."""

from __future__ import annotations

from typing import Optional

import click


@click.command("stop")
@click.argument("job", required=False)
@click.option(
    "--grace", type=float, default=None, help="Seconds between TERM and KILL (default: the plan's)."
)
def command(job: Optional[str], grace: Optional[float]) -> None:
    """Stop JOB (default: the latest job) on all its nodes at once.

    Each node's agent sends TERM to every process group of the job, waits, sends KILL, and checks that
    no process of the job is left. Exit code 5 when a node could not confirm it.
    """
    from orchestrator.jobs.state import resolve_job
    from orchestrator.launch.stop import stop_job

    jd = resolve_job(job)
    result = stop_job(jd, grace)
    for host, ok in sorted(result.confirmed.items()):
        killed = result.killed.get(host) or {}
        click.echo(
            f"{host}: {'nothing left' if ok else 'NOT confirmed'} ({len(killed)} process(es) signalled)"
        )
    click.echo(f"job {jd.job_id}: {result.status.state.value}")
