"""`orchestrate logs [JOB] [--rank R] [--follow] [--lines N]`: rank logs, prefixed by host and rank."""

from __future__ import annotations

from typing import Optional

import click


@click.command("logs")
@click.argument("job", required=False)
@click.option("--rank", type=int, default=None, help="Only this rank (default: every process).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job ends.")
@click.option(
    "--lines", "-n", type=int, default=50, show_default=True, help="Lines of each log to start with."
)
def command(job: Optional[str], rank: Optional[int], follow: bool, lines: int) -> None:
    """Print the logs of JOB (default: the latest job) from every node, each line as `[host rank-R] ...`."""
    from orchestrator.errors import InputError, Problem
    from orchestrator.jobs.state import resolve_job, unfinished_jobs
    from orchestrator.launch import logs
    from orchestrator.launch.nodes import JobNodes

    jd = resolve_job(job)
    if job is None:
        others = [j for j in unfinished_jobs() if j != jd.job_id]
        if others:
            click.echo(f"(the latest job {jd.job_id}; also running: {', '.join(others)})", err=True)
    record = jd.record()
    try:
        procs = logs.select(record, rank)
    except ValueError as exc:
        raise InputError([Problem("--rank", "rank", str(exc), "pick a rank of the job")]) from None

    def done() -> bool:
        status = jd.status()
        return status is None or status.state.is_terminal()

    def warn(errors: dict[str, str]) -> None:
        for host, err in errors.items():
            click.echo(f"[{host}] (no answer: {err})", err=True)

    with JobNodes(record.nodes) as nodes:
        for line in logs.stream(nodes, procs, lines, follow, done, on_error=warn):
            click.echo(line)
