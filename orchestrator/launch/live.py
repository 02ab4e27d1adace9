"""The live view of a job: a table per node and rank (state, step, loss, tokens/s, ETA) and overall progress.

``render`` builds rich renderables from a ``JobStatus``; ``render_text`` gives the same as plain text
(tests, logs; values whole unless a width is given); ``follow`` redraws it from the state folder until
the job ends (on a console from ``orchestrator.cli.console``: values whole when it is not a terminal).
"""

from __future__ import annotations

import io
import time
from typing import Callable, Optional

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orchestrator.cli.console import make_console
from orchestrator.jobs.model import JobState, JobStatus, RankStatus, overall

STYLES = {"running": "green", "exited": "", "lost": "red", "unknown": "red", "not-started": "yellow",
          "exiting": "yellow", JobState.FAILED.value: "bold red", JobState.SUCCEEDED.value: "bold green",
          JobState.STOPPED.value: "yellow", JobState.RESTARTING.value: "bold yellow"}  # fmt: skip


def fmt_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _num(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _rank_state(r: RankStatus) -> Text:
    if r.state == "exited":
        text = f"exit {r.exit_code}" + (f" ({r.signal})" if r.signal else "")
        return Text(text, style="green" if r.exit_code == 0 else "red")
    return Text(r.state, style=STYLES.get(r.state, ""))


def rank_table(status: JobStatus) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col, just in (("node", "left"), ("rank", "left"), ("state", "left"), ("step", "right"),
                      ("loss", "right"), ("tokens/s", "right"), ("ETA", "right"), ("cpu%", "right")):  # fmt: skip
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for node in status.nodes:
        if not node.ranks:
            why = node.error or node.agent_state
            table.add_row(
                node.host, "-", Text("no answer: " + why if not node.reachable else why, style="red")
            )
        for r in node.ranks:
            p = r.progress
            host = node.host + ("" if node.reachable else " (silent)")
            table.add_row(
                host, r.name, _rank_state(r),
                f"{p.step}/{p.total_steps}" if p else "-", _num(p.loss if p else None, ".4f"),
                _num(p.tokens_per_s if p else None, ".0f"), fmt_duration(p.eta_s if p else None),
                _num(r.cpu_percent, ".0f"),
            )  # fmt: skip
    return table


def headline(status: JobStatus) -> Text:
    o = overall(status)
    width = 30
    filled = int(o.fraction * width)
    bar = "#" * filled + "." * (width - filled)
    elapsed = (status.ended or status.time) - status.started if status.started else None
    text = Text(f"job {status.job_id} ({status.task}) ")
    text.append(status.state.value, style=STYLES.get(status.state.value, "bold"))
    text.append(f"  [{bar}] {o.step}/{o.total_steps} steps  {o.ranks_running}/{o.ranks_total} ranks running")
    text.append(f"  elapsed {fmt_duration(elapsed)}  ETA {fmt_duration(o.eta_s)}")
    if o.tokens_per_s is not None:
        text.append(f"  {o.tokens_per_s:.0f} tokens/s")
    if status.max_attempts > 1 or status.attempt > 1:
        text.append(f"\nattempt {status.attempt}/{status.max_attempts}")
        if status.attempt > 1:
            how = (
                f"step {status.resumed_from}"
                if status.resumed_from is not None
                else "scratch (no common checkpoint)"
            )
            text.append(f", resumed from {how}")
    return text


def render(status: JobStatus) -> RenderableType:
    parts: list[RenderableType] = [headline(status), rank_table(status)]
    if status.root_cause is not None:
        c = status.root_cause
        parts.append(Text(f"root cause: {c}", style="bold red"))
        parts += [Text(f"  | {line}", style="red") for line in c.log_tail[-8:]]
    elif status.message:
        parts.append(Text(status.message))
    if status.root_cause is not None and status.message:
        parts.append(Text(status.message))
    if status.logs_index:
        parts.append(Text(f"logs collected after the failure: {status.logs_index}", style="bold"))
    return Group(*parts)


def render_text(status: JobStatus, width: Optional[int] = None) -> str:
    """The view as plain text: every value whole, or fitted to ``width`` columns as on a terminal."""
    buf = io.StringIO()
    options = {"width": width} if width else {}
    make_console(file=buf, color_system=None, force_terminal=False, **options).print(render(status))
    return buf.getvalue()


def follow(
    read: Callable[[], Optional[JobStatus]], console: Console, poll_s: float = 0.5
) -> Optional[JobStatus]:
    """Redraw the status returned by ``read`` until it is terminal; the last status."""
    status = read()
    with Live(render(status) if status else Text("waiting for the first snapshot"), console=console,
              refresh_per_second=4, transient=False) as live:  # fmt: skip
        while status is None or not status.state.is_terminal():
            time.sleep(poll_s)
            status = read() or status
            if status is not None:
                live.update(render(status))
    if not console.is_terminal:
        console.print()  # Live leaves the last line open when it is not drawing on a terminal
    return status
