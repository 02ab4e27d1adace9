"""`orchestrate doctor INVENTORY [--json] [--strict]`: preflight checks on every node in parallel."""

from __future__ import annotations

import click


@click.command("doctor")
@click.argument("inventory", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--strict", is_flag=True, help="Treat warnings as failures.")
@click.option(
    "--max-clock-skew", default=5.0, show_default=True, help="Seconds of clock skew vs this machine."
)
@click.option(
    "--min-free-gb", default=5.0, show_default=True, help="Free GiB needed in each node's work folder."
)
@click.option(
    "--port", "ports", type=int, multiple=True, help="Check this port instead of the job's (repeat)."
)
def command(
    inventory: str, as_json: bool, strict: bool, max_clock_skew: float, min_free_gb: float, ports
) -> None:
    """Check SSH reach and host keys, hostnames, clocks, Python/MindSpore/MindFormers versions, the CANN
    install (location, CANN and driver versions against the pinned pairing), the NPUs (chips of the
    inventory's profile, health), processes holding NPUs, free disk, free job ports and device NIC
    health on every node of INVENTORY.

    Prints one table (node x check: ok / warn / FAIL / skip). Exit code: 0 when no check failed
    (warnings allowed), 1 when any check failed (or warned, with --strict).
    """
    from orchestrator.doctor.checks import Limits
    from orchestrator.doctor.render import render_report, report_json
    from orchestrator.doctor.run import PreflightFailed, run_doctor
    from orchestrator.inventory import load_inventory

    limits = Limits(max_clock_skew_s=max_clock_skew, min_free_gb=min_free_gb)
    report = run_doctor(load_inventory(inventory), limits=limits, ports=ports or None, strict=strict)
    if as_json:
        click.echo(report_json(report))
    else:
        render_report(report)
    if report.failed:
        raise PreflightFailed("doctor: preflight failed (see the table above)")
