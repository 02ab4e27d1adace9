"""`orchestrate checkpoint pull|merge|reshard|flow`: a job's checkpoints back to the controller, merged
into one complete checkpoint, resharded offline, and the dry run of the offline resharding flow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import click

_STEP = click.option("--step", default=None, metavar="EPOCH_STEP",
                     help="Use this saved step (e.g. 1_10) instead of the newest one every rank saved.")  # fmt: skip
_JSON = click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")


def _pull(job_ref: str, out: Optional[str], step: Optional[str], verify: bool) -> Any:
    from orchestrator.jobs.state import resolve_job
    from orchestrator.reshard.pull import pull

    job = resolve_job(job_ref)
    dest = Path(out) if out else Path("checkpoints") / job.job_id
    return pull(job.plan(), job.record().nodes, dest, job.job_id, step=step, verify=verify)


@click.group("checkpoint")
def command() -> None:
    """Gather, merge and reshard a job's checkpoints."""


@command.command("pull")
@click.argument("job")
@click.option("--out", default=None, metavar="DIR", help="Local folder (default: checkpoints/<job id>).")
@_STEP
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Hash the files on the nodes and check every copy against it.")  # fmt: skip
@_JSON
def pull_cmd(job: str, out: Optional[str], step: Optional[str], verify: bool, as_json: bool) -> None:
    """Gather JOB's per-rank checkpoints (one step) and strategy files from every node, in parallel.

    Layout: DIR/checkpoint/rank_<R>/<file>, DIR/strategy/ckpt_strategy_rank_<R>.ckpt, DIR/pull.json.
    Files already here and identical are not copied again.
    """
    p = _pull(job, out, step, verify)
    if as_json:
        click.echo(json.dumps({"out": str(p.out), "job": p.job_id, "step": p.selection.tag,
                               "files": len(p.files), "fetched": p.fetched, "bytes": p.bytes}, sort_keys=True))  # fmt: skip
        return
    strategies = sum(1 for f in p.files if f.rel.startswith("strategy/"))
    click.echo(f"{p.job_id}: step {p.selection.tag}, {len(p.selection.files)} rank checkpoint(s), "
               f"{strategies} strategy file(s) in {p.out} ({p.fetched} copied, {p.skipped} already here)")  # fmt: skip


@command.command("merge")
@click.argument("source")
@click.option(
    "--out", default=None, metavar="FILE", help="The complete checkpoint (default: SOURCE/merged.ckpt)."
)
@_STEP
@click.option("--strategy", default=None, type=click.Path(exists=True, file_okay=False),
              help="Folder of the ckpt_strategy_rank_N.ckpt files (default: SOURCE/strategy).")  # fmt: skip
@click.option(
    "--keep-optimizer", is_flag=True, help="Keep optimizer state and loop counters (default: weights only)."
)
@_JSON
def merge_cmd(source: str, out: Optional[str], step: Optional[str], strategy: Optional[str],
              keep_optimizer: bool, as_json: bool) -> None:  # fmt: skip
    """Merge the per-rank checkpoints of SOURCE (a job, pulled first, or a folder) into one checkpoint
    for single-card inference. Shards are merged by their strategy files; data-parallel ranks without
    any must hold the same weights, and rank 0's are taken."""
    from orchestrator.reshard.transform import merge

    folder = Path(source)
    if not folder.is_dir():
        folder = _pull(source, None, step, True).out
    result = merge(folder, Path(out) if out else None, step=step,
                   strategy=Path(strategy) if strategy else None, weights_only=not keep_optimizer)  # fmt: skip
    if as_json:
        click.echo(json.dumps({"out": str(result.out), "step": result.step, "mode": result.mode,
                               "ranks": result.world}, sort_keys=True))  # fmt: skip
    else:
        click.echo(f"merged {result.world} rank(s) at step {result.step} ({result.mode}) into {result.out}")


@command.command("reshard")
@click.argument("source", type=click.Path(exists=True))
@click.option("--to", "to_strategy", default=None, type=click.Path(exists=True),
              help="Target strategy: a file or a folder of ckpt_strategy_rank_N.ckpt (omit: one complete file).")  # fmt: skip
@click.option("--strategy", default=None, type=click.Path(exists=True, file_okay=False),
              help="SOURCE's strategy files when it is sharded (default: SOURCE/strategy).")  # fmt: skip
@click.option("--out", required=True, metavar="DIR", help="New folder for rank_<R>/checkpoint_<R>.ckpt.")
@_STEP
def reshard_cmd(
    source: str, to_strategy: Optional[str], strategy: Optional[str], out: str, step: Optional[str]
) -> None:
    """Reshard SOURCE (a .ckpt, or rank folders) offline with mindspore.transform_checkpoints."""
    from orchestrator.reshard.transform import reshard

    files = reshard(Path(source), Path(out), Path(to_strategy) if to_strategy else None, step=step,
                    strategy=Path(strategy) if strategy else None)  # fmt: skip
    click.echo(f"{len(files)} rank folder(s) in {out}")


@command.command("flow")
@click.argument("inventory", type=click.Path(exists=True, dir_okay=False))
@click.option("--task", required=True, help="The training task (pretrain, finetune, lora).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Plan overrides, as for `plan`.")
@click.option("--work", default="reshard-work", show_default=True, help="Controller folder of the flow.")
@click.option("--checkpoint", default=None, help="Source checkpoint (default: the job's load_checkpoint).")
@click.option("--strategy", default=None, help="Strategy files of a sharded source checkpoint.")
def flow_cmd(inventory: str, task: str, sets: tuple[str, ...], work: str, checkpoint: Optional[str],
             strategy: Optional[str]) -> None:  # fmt: skip
    """Dry run of the offline resharding flow (strategy run, gather, transform, push, launch) for jobs on
    more than 8 devices without shared storage."""
    import sys

    from orchestrator.inventory import load_inventory
    from orchestrator.reshard.flow import needs_offline, plan_flow, render

    inv = load_inventory(inventory)
    flow = plan_flow(inv, task, sets, Path(work).absolute(), checkpoint, strategy, python=sys.executable)
    click.echo(render(flow), nl=False)
    if not needs_offline(flow.requested, inv.cluster.shared_paths):
        click.echo("note: MindFormers can reshard this job itself (auto_trans_ckpt); the flow is optional")
