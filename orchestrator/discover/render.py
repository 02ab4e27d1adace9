"""Discovery for people (a rich table of devices per node, then the differences) and for machines."""

from __future__ import annotations

import dataclasses
import json
from typing import Optional

from rich.console import Console
from rich.table import Table

from orchestrator.cli.console import make_console
from orchestrator.discover.model import Discovery


def render_discovery(discovery: Discovery, console: Optional[Console] = None) -> None:
    """The table on ``console`` (default: stdout; a pipe or file gets every value whole)."""
    console = make_console() if console is None else console
    table = Table(title="discovered nodes", header_style="bold")
    for col in ("host", "hostname", "NPU", "name", "health", "device IP", "link", "net health", "processes"):
        table.add_column(col, no_wrap=col in ("host", "device IP"))
    for node in discovery.nodes:
        if not node.devices:
            why = node.npu_smi_error or ("no NPU tools" if not node.has_npu_tools else "no NPUs listed")
            table.add_row(node.host, node.hostname, "-", why, *[""] * 5)
        for i, d in enumerate(node.devices):
            procs = ", ".join(str(p.pid) for p in d.processes)
            first = (node.host, node.hostname) if i == 0 else ("", "")
            ip = (d.ip or "?") + (" (conf)" if d.ip_source == "hccn.conf" else "")
            cells = (str(d.device_id), d.name, d.health, ip, d.link or "?", d.net_health or "?")
            table.add_row(*first, *cells, procs)
    for host, _error in discovery.failures:
        table.add_row(host, "[bold red]unreachable[/]", *[""] * 7)
    console.print(table)
    if not discovery.differences:
        console.print("[green]no differences from the inventory[/]")
    for d in discovery.differences:
        style = "bold red" if d.severity == "error" else "yellow"
        console.print(f"[{style}]{d.severity}[/] {d}", highlight=False)


def discovery_json(discovery: Discovery) -> str:
    data = dataclasses.asdict(discovery)
    data["ok"] = discovery.ok
    return json.dumps(data, indent=2, sort_keys=True, default=str)
