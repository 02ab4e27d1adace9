"""`orchestrate sim`: build, inspect, break and remove simulated Ascend clusters (needs root)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

FAULT_HELP = {
    "link-down": "Cut the node's network link.",
    "link-up": "Reconnect the node's network link.",
    "sshd-stop": "Stop the node's sshd (open sessions stay).",
    "sshd-start": "Start the node's sshd again.",
    "freeze": "SIGSTOP every process of the node.",
    "thaw": "SIGCONT every process of the node.",
    "kill": "Kill every process of the node.",
    "boot": "Start a killed node again.",
}
name_option = click.option("--name", default="sim", show_default=True, help="Cluster name.")


@click.group("sim")
def command() -> None:
    """Simulated Ascend clusters: network-namespace nodes with sshd and fake npu-smi/hccn_tool."""


@command.command("up")
@click.option("--nodes", type=click.IntRange(1, 150), default=2, show_default=True, help="Number of nodes.")
@name_option
@click.option(
    "--hardware", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Hardware YAML."
)
@click.option(
    "--devices",
    type=click.IntRange(1, 16),
    default=8,
    show_default=True,
    help="NPUs per node (default hardware).",
)
@click.option("--link-rate", default=None, metavar="RATE",
              help="Bandwidth of every node link and of the controller's uplink, e.g. 200mbit, 1gbit.")  # fmt: skip
@click.option("--link-delay", type=float, default=None, metavar="MS",
              help="Latency added to each link in each direction, in ms (needs --link-rate and sch_netem).")  # fmt: skip
@click.option("--slurm", is_flag=True,
              help="Run Slurm: slurmctld on this host, slurmd in every node (partition npu).")  # fmt: skip
@click.option("--bastion", is_flag=True,
              help="Put the nodes behind a login node: reachable only through it (inventory proxy_jump).")  # fmt: skip
def up_cmd(nodes: int, name: str, hardware: Path | None, devices: int, link_rate: str | None,
           link_delay: float | None, slurm: bool, bastion: bool) -> None:  # fmt: skip
    """Build a cluster (replacing any leftover of the same name) and write its inventory."""
    from orchestrator.sim import cluster, links
    from orchestrator.sim.inventory_file import table

    limits = links.limits_from(link_rate, link_delay)
    c = cluster.up(name, nodes, hardware, devices, limits=limits, with_slurm=slurm, bastion=bastion)
    if limits is not None:
        click.echo(f"links:       {limits.label} (every node link, both ways, and the controller's uplink)")
    click.echo(
        table([{"node": n.hostname, "address": n.address, "workdir": str(n.workdir)} for n in c.nodes]),
        nl=False,
    )
    click.echo(f"inventory:   {c.inventory}\nknown_hosts: {c.known_hosts}\nkey:         {c.key}")
    if bastion:
        click.echo(f"bastion:     {c.state().bastion.address} (the nodes are reachable only through it)")
    if slurm:
        from orchestrator.sim.slurm import conf_path, inventory_path

        click.echo(f"slurm:       partition npu; on this host: SLURM_CONF={conf_path(name)} sinfo")
        click.echo(f"slurm inventory: {inventory_path(name)} (node1 is the login host)")


@command.command("down")
@name_option
@click.option("--all", "everything", is_flag=True, help="Remove every simulated cluster.")
def down_cmd(name: str, everything: bool) -> None:
    """Remove every trace of a cluster (processes, namespaces, links, mounts, state)."""
    from orchestrator.sim import teardown

    for cname in teardown.all_names() if everything else [name]:
        removed = teardown.down(cname)
        click.echo(f"{cname}: removed {len(removed)} resource(s)")


@command.command("status")
@click.option("--name", default=None, help="Only this cluster.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status_cmd(name: str | None, as_json: bool) -> None:
    """List clusters and their nodes (address, sshd, link)."""
    from orchestrator.sim import cluster
    from orchestrator.sim.inventory_file import table

    if os.geteuid() != 0:
        from orchestrator.errors import NotRoot

        raise NotRoot("`orchestrate sim status` needs root (it inspects namespaces)")
    clusters = cluster.status(name)
    if as_json:
        click.echo(json.dumps(clusters, indent=1))
        return
    for c in clusters:
        limits = c.get("links")
        shown = f" links {limits['rate_bps'] / 1e6:g} Mbit/s" if limits else ""
        shown += f" +{limits['delay_ms']:g} ms" if limits and limits.get("delay_ms") else ""
        click.echo(f"{c['name']}: {c.get('subnet', '?')} {c['status']}{shown}")
        click.echo(table([{k: str(v) for k, v in n.items()} for n in c["nodes"]]), nl=False)
    if not clusters:
        click.echo("no simulated clusters")


@command.command("exec", context_settings={"ignore_unknown_options": True})
@name_option
@click.argument("node")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_cmd(name: str, node: str, argv: tuple[str, ...]) -> None:
    """Run a command inside NODE without SSH (for debugging): sim exec node1 -- hostname."""
    from orchestrator.sim import cluster

    proc = cluster.open_cluster(name).exec(node, list(argv))
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    sys.exit(proc.returncode)


@command.group("fault")
def fault() -> None:
    """Inject a fault into a node."""


def _fault_command(fault_name: str) -> click.Command:
    @click.command(fault_name, help=FAULT_HELP[fault_name])
    @name_option
    @click.argument("node")
    def run(name: str, node: str) -> None:
        from orchestrator.sim import faults

        faults.inject(name, fault_name, node)
        click.echo(f"{name}/{node}: {fault_name}")

    return run


for _fault in FAULT_HELP:
    fault.add_command(_fault_command(_fault))
