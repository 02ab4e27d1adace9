"""`orchestrate stop [JOB] [--grace S]`: stop every rank on every node and confirm nothing is left."""

from __future__ import annotations

from typing import Optional

import click


@click.command("stop")
@click.argument("job", required=False)
@click.option(
    "--grace", type=float, default=None, help="Seconds between TERM and KILL (default: the plan's)."
)
@click.option(
    "--release-wait",
    type=float,
    default=None,
    help="Seconds each node waits at most for npu-smi to release the job's NPUs (default: 30).",
)
def command(job: Optional[str], grace: Optional[float], release_wait: Optional[float]) -> None:
    """Stop JOB on all its nodes at once (default: the one running job; with several running, name one).

    Each node's agent sends TERM to every process group of the job, waits, sends KILL, checks that no
    process of the job is left, then waits until npu-smi no longer lists a process of the job on its
    NPUs (the listing lags the exit). Exit code 5 when a node could not confirm the stop.
    """
    from orchestrator.agent.client import release_note
    from orchestrator.jobs.state import resolve_to_stop
    from orchestrator.launch.stop import stop_job

    jd = resolve_to_stop(job)
    result = stop_job(jd, grace, release_wait=release_wait)
    for host, ok in sorted(result.confirmed.items()):
        killed = result.killed.get(host) or {}
        note = release_note(result.released.get(host))
        click.echo(
            f"{host}: {'nothing left' if ok else 'NOT confirmed'} ({len(killed)} process(es) signalled"
            + (f"; {note})" if note else ")")
        )
    click.echo(f"job {jd.job_id}: {result.status.state.value}")
