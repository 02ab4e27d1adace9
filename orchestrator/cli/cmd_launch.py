"""`orchestrate launch TASK [--inventory F | --plan DIR] [--set K=V ...] [--detach] [--force]`."""

from __future__ import annotations

from typing import Optional

import click

TASKS = ("pretrain", "finetune", "lora", "predict", "predict_lora", "export")


@click.command("launch")
@click.argument("task", type=click.Choice(TASKS))
@click.option(
    "--inventory",
    "-i",
    "inventory",
    type=click.Path(exists=True, dir_okay=False),
    help="Inventory file (default: the embedded local CPU inventory).",
)
@click.option(
    "--plan",
    "plan_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Launch this plan folder (from `orchestrate plan`) instead of planning now.",
)
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="Plan override, as for `orchestrate plan`."
)
@click.option(
    "--detach", is_flag=True, help="Return once every rank runs; a background monitor keeps watching."
)
@click.option("--force", is_flag=True, help="Stop a job still running on the nodes first.")
def command(task: str, inventory: Optional[str], plan_dir: Optional[str], sets: tuple[str, ...], detach: bool,
            force: bool) -> None:  # fmt: skip
    """Plan (unless --plan), stage and start TASK on every node, then follow it with a live table.

    Exit code 0 when the job succeeds, 6 when it fails (the root-cause rank is named). With --detach,
    or after Ctrl-C, the job and its monitor keep running: `orchestrate status` reattaches.
    """
    from rich.console import Console

    from orchestrator.launch.attach import outcome, watch
    from orchestrator.launch.start import launch, resolve_plan
    from orchestrator.launch.supervisor import spawn_monitor

    console = Console()
    plan, inv = resolve_plan(task, inventory, plan_dir, sets)
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    done = launch(plan, inv, force=force, report=lambda msg: console.print(f"[dim]{msg}[/]"))
    spawn_monitor(done.job)
    job_id = done.job.job_id
    console.print(
        f"job [bold]{job_id}[/]: {len(done.record.processes)} process(es) running on "
        f"{len(done.record.nodes)} node(s) (staged {done.stage_s:.1f}s, started {done.start_s:.1f}s)"
    )
    if detach:
        console.print(
            f"follow it with `orchestrate status {job_id} --watch`; stop it with `orchestrate stop {job_id}`"
        )
        return
    try:
        status = watch(done.job, console)
    except KeyboardInterrupt:
        console.print(f"\nstill running; `orchestrate status {job_id}` reattaches")
        raise
    outcome(status)
