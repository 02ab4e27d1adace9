"""Doctor's report for people (one rich table, node x check, then the details) and for machines (JSON)."""

from __future__ import annotations

import json
from typing import Optional

from rich.console import Console
from rich.table import Table

from orchestrator.cli.console import make_console
from orchestrator.doctor.checks import CHECKS, Status
from orchestrator.doctor.run import DoctorReport

WIDE = 130
HEADERS = {"hostname": "name", "versions": "vers", "npu_procs": "procs"}
STYLE = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}


def _cell(status: Status, value: str) -> str:
    return f"[{STYLE[status]}]{status.value}[/]" + (f" {value}" if value else "")


def render_report(report: DoctorReport, console: Optional[Console] = None) -> None:
    """The table on ``console`` (default: stdout; a pipe or file gets every value whole)."""
    console = make_console() if console is None else console
    wide = console.width >= WIDE  # room for a value next to each status
    table = Table(title="orchestrate doctor", header_style="bold")
    table.add_column("node", no_wrap=True)
    for name in CHECKS:
        table.add_column(HEADERS.get(name, name))
    for host in report.hosts:
        cells = [_cell(report.get(host, n).status, report.get(host, n).value if wide else "") for n in CHECKS]
        table.add_row(host, *cells)
    console.print(table)
    problems = [c for c in report.checks if c.status in (Status.FAIL, Status.WARN)]
    for c in problems:
        console.print(
            f"[{STYLE[c.status]}]{c.status.value}[/] {c.host} {c.name}: {c.detail}", highlight=False
        )
    fails, warns = report.count(Status.FAIL), report.count(Status.WARN)
    verdict = "FAILED" if report.failed else "passed"
    console.print(f"doctor {verdict}: {fails} failure(s), {warns} warning(s) on {len(report.hosts)} node(s)")


def report_json(report: DoctorReport) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True)
