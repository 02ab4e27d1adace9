"""`orchestrate launch TASK [--inventory F | --plan DIR] [--set K=V ...] [--max-restarts N] [--detach] [--force]`
and `orchestrate launch --resume JOB [--max-restarts N] [--detach]`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

TASKS = ("pretrain", "finetune", "lora", "predict", "predict_lora", "export", "eval")


@click.command("launch")
@click.argument("task", type=click.Choice(TASKS), required=False)
@click.option("--inventory", "-i", "inventory", type=click.Path(exists=True, dir_okay=False),
              help="Inventory file (default: the embedded local CPU inventory).")  # fmt: skip
@click.option("--plan", "plan_dir", type=click.Path(exists=True, file_okay=False),
              help="Launch this plan folder (from `orchestrate plan`) instead of planning now.")  # fmt: skip
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="Plan override, as for `orchestrate plan`."
)
@click.option("--max-restarts", type=click.IntRange(min=0), default=0, show_default=True,
              help="After a failure, relaunch from the newest step every rank saved (from scratch before the first checkpoint), up to N times.")  # fmt: skip
@click.option("--resume", "resume_job", metavar="JOB",
              help="Resume the failed or stopped JOB from its newest checkpoint (no TASK then).")  # fmt: skip
@click.option(
    "--detach", is_flag=True, help="Return once every rank runs; a background monitor keeps watching."
)
@click.option("--force", is_flag=True,
              help="Stop earlier jobs of this orchestrator still running on the nodes first (never another "
                   "process: one holding a needed NPU fails the launch, named).")  # fmt: skip
def command(task: Optional[str], inventory: Optional[str], plan_dir: Optional[str], sets: tuple[str, ...],
            max_restarts: int, resume_job: Optional[str], detach: bool, force: bool) -> None:  # fmt: skip
    """Plan (unless --plan), stage and start TASK on every node, then follow it with a live table.

    Exit code 0 when the job succeeds, 6 when it fails (the root-cause rank is named, and the logs
    collected from every node are indexed). With --detach, or after Ctrl-C, the job and its monitor keep
    running: `orchestrate status` reattaches. A job that loads a checkpoint on more than 8 devices
    without shared storage goes through the offline resharding flow first (strategy run, gather,
    transform, push).
    """
    from orchestrator.cli.console import make_console
    from orchestrator.errors import InputError, Problem
    from orchestrator.launch import attach, start
    from orchestrator.launch.watch_process import spawn_monitor

    console = make_console()

    def say(msg: str) -> None:
        console.print(f"[dim]{msg}[/]")

    if resume_job:
        if task or inventory or plan_dir or sets or force:
            raise InputError([Problem("--resume", "--resume", "resumes a recorded job as it was planned",
                                      "drop TASK/--inventory/--plan/--set/--force")])  # fmt: skip
        done = _resume(resume_job, max_restarts, say)
    elif task is None:
        raise InputError(
            [Problem("launch", "TASK", "missing", f"one of {', '.join(TASKS)}, or --resume JOB")]
        )
    elif (slurm_inv := _slurm_inventory(inventory, plan_dir)) is not None:
        done = _launch_on_slurm(slurm_inv, task, sets, force, max_restarts, say, console)
    else:
        plan, inv = start.resolve_plan(task, inventory, plan_dir, sets)
        for warning in plan.warnings:
            console.print(f"[yellow]warning:[/] {warning}")
        for note in plan.notes:
            say(f"note: {note}")
        plan = _offline_if_needed(plan, inv, task, sets, plan_dir, say, console)
        done = start.launch(plan, inv, force=force, report=say, max_restarts=max_restarts)
    spawn_monitor(done.job)
    job_id = done.job.job_id
    console.print(
        f"job [bold]{job_id}[/]: {len(done.record.processes)} process(es) running on "
        f"{len(done.record.nodes)} node(s) (staged and started in {done.stage_s + done.start_s:.1f}s)"
    )
    if detach:
        console.print(
            f"follow it with `orchestrate status {job_id} --watch`; stop it with `orchestrate stop {job_id}`"
        )
        return
    try:
        status = attach.watch(done.job, console)
    except KeyboardInterrupt:
        console.print(f"\nstill running; `orchestrate status {job_id}` reattaches")
        raise
    attach.outcome(attach.settled(done.job, status))


def _slurm_inventory(path: Optional[str], plan_dir: Optional[str]):
    """The inventory at ``path`` when it says ``scheduler: slurm`` (Slurm gives the nodes at launch)."""
    from orchestrator.errors import InputError, Problem
    from orchestrator.inventory import load_inventory

    if plan_dir:
        from orchestrator.plan.plan_io import load_plan

        source = load_plan(plan_dir).inventory_source
        if Path(source).is_file() and load_inventory(source).cluster.scheduler == "slurm":
            raise InputError([Problem(plan_dir, "--plan", "the plan of a Slurm inventory: the nodes are those of "
                                      "the allocation launch is given", f"orchestrate launch TASK -i {source}")])  # fmt: skip
        return None
    if not path:
        return None
    inv = load_inventory(path)
    return inv if inv.cluster.scheduler == "slurm" else None


def _launch_on_slurm(inv, task: str, sets: tuple[str, ...], force: bool, max_restarts: int, say, console):
    """Hold nodes through Slurm, plan on them, launch: the allocation is cancelled if the launch fails."""
    import time

    from orchestrator.launch import start
    from orchestrator.plan.planner import make_plan
    from orchestrator.slurm.backend import allocated

    with allocated(inv, f"{inv.cluster.name}-{task}-{time.strftime('%Y%m%d-%H%M%S')}", say) as held:
        plan = make_plan(held, task, sets)
        for warning in plan.warnings:
            console.print(f"[yellow]warning:[/] {warning}")
        for note in plan.notes:
            say(f"note: {note}")
        return start.launch(plan, held, force=force, report=say, max_restarts=max_restarts)


def _resume(job: str, max_restarts: int, say):
    from orchestrator.jobs.state import resolve_job
    from orchestrator.launch.restart import mark_failed, relaunch, reopen

    jd = resolve_job(job)
    reopen(jd, max_restarts)
    try:
        return relaunch(jd, "resume", say)
    except Exception as exc:
        mark_failed(jd, f"resume failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        raise


def _offline_if_needed(plan, inv, task, sets, plan_dir, say, console):
    """The final plan of the offline resharding flow when MindFormers cannot reshard; else ``plan``."""
    from orchestrator.reshard import needs_offline

    if not needs_offline(plan, inv.cluster.shared_paths):
        return plan

    from orchestrator.errors import InputError, Problem
    from orchestrator.jobs.state import home
    from orchestrator.launch import attach, start
    from orchestrator.launch.offline import default_actions, run_offline
    from orchestrator.launch.watch_process import spawn_monitor
    from orchestrator.reshard import plan_flow, render

    if plan_dir:
        raise InputError([Problem(plan_dir, "--plan", "this job needs the offline resharding flow, which plans "
                                  "two jobs", "launch from the inventory (--inventory, --set) instead")])  # fmt: skip
    work = home() / "offline" / f"{plan.cluster}-{task}"
    strategy = plan.checkpoint.strategy if plan.checkpoint else None  # a sharded source's strategy files
    flow = plan_flow(inv, task, sets, work, source_strategy=strategy)
    console.print(render(flow), end="")

    def run_job(p):
        done = start.launch(p, inv, report=say)
        spawn_monitor(done.job)
        attach.outcome(attach.settled(done.job, attach.watch(done.job, console)))
        return done.job.plan()

    return run_offline(flow, default_actions(inv.nodes, run_job), say)
