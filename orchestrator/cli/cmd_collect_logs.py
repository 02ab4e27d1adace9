"""`orchestrate collect-logs [JOB] [--out DIR] [--json]`: a job's logs from every node, indexed."""

from __future__ import annotations

from typing import Optional

import click


@click.command("collect-logs")
@click.argument("job", required=False)
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Folder to collect into (default: ~/.orchestrate/logs); the job gets <out>/<job>/.")  # fmt: skip
@click.option("--max-node-size", "max_node_mb", type=click.IntRange(1), default=2048, show_default=True,
              metavar="MIB", help="Cap on the MiB taken from one node's files; the rest is listed in INDEX.md.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the index as JSON.")
def command(job: Optional[str], out: Optional[str], max_node_mb: int, as_json: bool) -> None:
    """Collect JOB (default: the latest job) from every node in parallel.

    Rank and scheduler logs, the node agent's records, CANN plogs, rendered configs, env files, the
    rank table and npu-smi/hccn_tool snapshots land in <out>/<job>/<host>/, with INDEX.md naming the
    root cause and loss.png. Each node's archive streams to disk (never whole in memory). Nothing on the nodes is changed. Exit code 4 if a node could not be
    collected (the others are still there).
    """
    import json
    from pathlib import Path

    from orchestrator.collect import collect_job_logs
    from orchestrator.errors import TransportError

    res = collect_job_logs(job, Path(out) if out else None, max_node_bytes=max_node_mb << 20)
    if as_json:
        click.echo(json.dumps(dict(res.index.to_dict(), folder=str(res.folder)), indent=1, sort_keys=True))
    else:
        ok = sum(c.ok for c in res.nodes.values())
        click.echo(
            f"job {res.job_id} ({res.index.state}): {ok}/{len(res.nodes)} node(s) collected into {res.folder}"
        )
        cause = res.root_cause
        if cause is not None:
            click.echo(f"root cause: {cause.what} on {cause.host}: {cause.reason}")
            for line in cause.error_lines[-5:]:
                click.echo(f"  | {line}")
        click.echo(f"index: {res.index_md}")
        click.echo(
            f"loss plot: {res.loss_png}" if res.loss_png else "loss plot: no loss lines in the rank logs"
        )
    if not res.ok:
        failed = "; ".join(f"{h}: {e}" for h, e in res.errors.items())
        raise TransportError(f"not every node was collected: {failed}")
