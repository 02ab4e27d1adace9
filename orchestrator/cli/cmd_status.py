"""`orchestrate status [JOB] [--json] [--watch]`: a job's state per node and rank (default: the latest job)."""

from __future__ import annotations

from typing import Optional

import click


@click.command("status")
@click.argument("job", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot as JSON.")
@click.option("--watch", is_flag=True, help="Follow the live table until the job ends.")
def command(job: Optional[str], as_json: bool, watch: bool) -> None:
    """Show JOB (an id, a unique prefix or suffix; default: the latest job).

    If no monitor watches the unfinished job (the controller was killed), one is started: the job is
    polled again from its nodes. With --watch the exit code is the job's (0 succeeded, 6 failed).
    """
    import json

    from orchestrator.cli.console import make_console
    from orchestrator.jobs.state import resolve_job, unfinished_jobs
    from orchestrator.launch import attach
    from orchestrator.launch.live import render

    jd = resolve_job(job)
    if job is None:
        others = [j for j in unfinished_jobs() if j != jd.job_id]
        if others:
            click.echo(f"(the latest job {jd.job_id}; also running: {', '.join(others)})", err=True)
    if watch:
        attach.outcome(attach.watch(jd, make_console()))
        return
    status = attach.reattach(jd)
    if status is None:
        raise click.ClickException(f"job {jd.job_id} has no status yet")
    if as_json:
        click.echo(json.dumps(status.to_dict(), indent=1, sort_keys=True, default=str))
    else:
        make_console().print(render(status))
