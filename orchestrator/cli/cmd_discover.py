"""`orchestrate discover INVENTORY [--json]`: read every node's NPUs, device IPs and NICs over SSH."""

from __future__ import annotations

import click


@click.command("discover")
@click.argument("inventory", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the discovery as JSON.")
def command(inventory: str, as_json: bool) -> None:
    """Discover NPUs, device IPs and NIC state on every node and list differences from INVENTORY.

    Exits 0 when every node answered and nothing differs in a way that breaks a job, 1 otherwise.
    """
    from orchestrator.discover import discover
    from orchestrator.discover.model import DiscoveryFailed
    from orchestrator.discover.render import discovery_json, render_discovery
    from orchestrator.inventory import load_inventory

    found = discover(load_inventory(inventory))
    if as_json:
        click.echo(discovery_json(found))
    else:
        render_discovery(found)
    if not found.ok:
        raise DiscoveryFailed(
            f"discovery: {len(found.failures)} unreachable node(s), {len(found.errors)} error(s)"
        )
