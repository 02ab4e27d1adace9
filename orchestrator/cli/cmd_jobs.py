"""`orchestrate jobs [--json] [--limit N]`: recent jobs, newest first."""

from __future__ import annotations

import click


@click.command("jobs")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.option("--limit", type=int, default=20, show_default=True, help="How many jobs to show.")
def command(as_json: bool, limit: int) -> None:
    """List recent jobs, newest first: id (date, time, task), state, attempts, ranks, duration, root cause."""
    import json

    from orchestrator.cli.console import make_console, prints_whole
    from orchestrator.launch.history import job_rows, jobs_table

    rows = job_rows(limit)
    if as_json:
        click.echo(json.dumps(rows, indent=1, sort_keys=True))
    elif not rows:
        click.echo("no jobs yet (orchestrate launch TASK)")
    else:
        console = make_console()
        console.print(jobs_table(rows, whole=prints_whole(console)))
