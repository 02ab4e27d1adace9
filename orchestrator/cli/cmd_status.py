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
    slurm = _slurm_view(jd)
    if as_json:
        data = status.to_dict()
        if slurm is not None:
            data["slurm"] = slurm
        click.echo(json.dumps(data, indent=1, sort_keys=True, default=str))
    else:
        make_console().print(render(status))
        if slurm is not None:
            reason = f" ({slurm['reason']})" if slurm["reason"] not in ("None", "") else ""
            click.echo(f"slurm job {slurm['job_id']}: {slurm['state']}{reason} on {slurm['nodes'] or '-'}"
                       f"{'' if slurm['owned'] else ' (your allocation: left running)'}")  # fmt: skip


def _slurm_view(jd) -> Optional[dict]:
    """The Slurm job holding a Slurm job's nodes, as Slurm reports it now (None: not on Slurm)."""
    from orchestrator.slurm.backend import route_of, slurm_job
    from orchestrator.slurm.hostlist import compress

    nodes = jd.record().nodes
    route = route_of(nodes)
    if route is None:
        return None
    try:
        sj = slurm_job(nodes)
    except Exception as exc:  # the login host is unreachable: say so, keep our own status
        return {"job_id": route.slurm_job, "state": "UNKNOWN", "reason": str(exc).splitlines()[0],
                "nodes": "", "owned": route.owned}  # fmt: skip
    if sj is None:
        return {"job_id": route.slurm_job, "state": "GONE", "reason": "no longer known to Slurm", "nodes": "",
                "owned": route.owned}  # fmt: skip
    return {"job_id": sj.job_id, "state": sj.state, "reason": sj.reason, "nodes": compress(list(sj.nodes)),
            "time_limit": sj.time_limit, "owned": route.owned}  # fmt: skip
