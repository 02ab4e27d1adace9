"""`orchestrate plan [INVENTORY] [--task T] [--set k=v ...] [--discover] [--json] [--out DIR] [--diff OLD]`."""

from __future__ import annotations

from typing import Optional

import click

TASK_CHOICES = ("pretrain", "finetune", "lora", "predict", "predict_lora", "export", "eval")


def _discover(inventory):
    """Discover the nodes; unreachable nodes and blocking differences stop the plan."""
    from orchestrator.cli.console import make_console
    from orchestrator.discover import discover
    from orchestrator.discover.render import render_discovery
    from orchestrator.errors import InputError, Problem, TransportError

    found = discover(inventory)
    render_discovery(found, make_console(stderr=True))
    if found.failures:
        raise TransportError("discovery: unreachable: " + "; ".join(f"{h}: {e}" for h, e in found.failures))
    if found.errors:
        raise InputError(
            [Problem(inventory.source, d.host, str(d), "fix the inventory or the node") for d in found.errors]
        )
    return found


def _slurm_nodes(inv, task: str):
    """A Slurm inventory planned on the nodes of the allocation it names (``slurm.job_id``, e.g. from
    ``salloc``); without one, Slurm gives the nodes only at launch."""
    from orchestrator.errors import InputError, Problem
    from orchestrator.slurm.backend import allocated

    if not inv.cluster.slurm.settings.job_id:
        raise InputError([Problem(inv.source, "cluster.slurm.job_id", "Slurm gives the nodes at launch: there "
                                  "are none to plan on yet", "`orchestrate launch TASK -i INVENTORY` plans on the "
                                  "nodes it is given; or hold nodes (salloc) and set `slurm.job_id` to plan on "
                                  "them")])  # fmt: skip
    with allocated(inv, f"{inv.cluster.name}-{task}-plan", lambda m: click.echo(m, err=True)) as held:
        return held


@click.command("plan")
@click.argument("inventory", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--task", default="pretrain", show_default=True, type=click.Choice(TASK_CHOICES))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override: parallel.* (strategy), model.* (model config), job.* (job options), or a dotted "
                   "path into the MindFormers YAML. Repeat for several.")  # fmt: skip
@click.option(
    "--discover", "do_discover", is_flag=True, help="Read devices and device IPs from the nodes first."
)
@click.option("--json", "as_json", is_flag=True, help="Print plan.json instead of the summary.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Plan folder to write.")
@click.option("--diff", "old_dir", type=click.Path(exists=True, file_okay=False),
              help="Print a unified diff against this earlier plan folder; exit 1 when they differ.")  # fmt: skip
def command(inventory: Optional[str], task: str, sets: tuple[str, ...], do_discover: bool, as_json: bool,
            out_dir: Optional[str], old_dir: Optional[str]) -> None:  # fmt: skip
    """Plan TASK on INVENTORY (default: the embedded local CPU inventory) without touching any node.

    Prints a reviewable summary (nodes, device-to-rank map, strategy, memory, timeouts, transfers) and
    writes the plan folder, by default ./orchestrate-plans/<cluster>-<task>/.
    """
    from pathlib import Path

    from orchestrator.inventory import default_inventory, load_inventory
    from orchestrator.plan.diff import PlansDiffer, diff_files, folder_files
    from orchestrator.plan.plan_io import plan_files, plan_json, write_plan
    from orchestrator.plan.planner import make_plan
    from orchestrator.plan.summary import print_summary, summary_text

    inv = load_inventory(inventory) if inventory else default_inventory()
    if inv.cluster.scheduler == "slurm":
        inv = _slurm_nodes(inv, task)
    found = _discover(inv) if do_discover else None
    plan = make_plan(inv, task, sets, found)
    out = Path(out_dir) if out_dir else Path("orchestrate-plans") / f"{plan.cluster}-{task}"
    diff = None
    if old_dir:
        new_files = {rel: text for rel, (text, _) in plan_files(plan, summary_text(plan)).items()}
        diff = diff_files(folder_files(old_dir), new_files, old_dir.rstrip("/"), str(out))
    written = write_plan(plan, out)
    if diff is not None:
        click.echo(diff, nl=False)
    elif as_json:
        click.echo(plan_json(plan), nl=False)
    else:
        print_summary(plan)
    click.echo(f"plan written to {out}/ ({len(written)} files)", err=True)
    if diff:
        raise PlansDiffer(f"the plan differs from {old_dir}")
