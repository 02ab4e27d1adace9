"""The loss curve of a job: every rank's MindFormers loss lines, one PNG (matplotlib, Agg backend).

Loss lines are read with the node agent's own parser (``agent.node.progress.parse_progress``), so the plot
and the live table agree on what a step and a loss are.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

from orchestrator.agent.node.progress import parse_progress

Points = list[tuple[int, float]]
_MARK = "step:["
_RANK = re.compile(r"rank-(\d+)")


def loss_points(lines: Iterable[str]) -> Points:
    """(global step, loss) of every MindFormers loss line in ``lines``; a repeated step keeps the last."""
    by_step: dict[int, float] = {}
    for line in lines:
        if _MARK not in line:
            continue
        p = parse_progress(line)
        if p and p["loss"] is not None:
            by_step[int(p["global_step"])] = float(p["loss"])
    return sorted(by_step.items())


def read_loss(path: Path) -> Points:
    """The loss points of one log file (read line by line; a missing file has none)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return loss_points(fh)
    except OSError:
        return []


def plot_losses(series: Mapping[str, Sequence[tuple[int, float]]], out: Path, title: str,
                failed_at: Optional[tuple[str, int]] = None) -> Optional[Path]:  # fmt: skip
    """Write one PNG with a loss curve per rank (``series``: label -> points); None when no points.

    ``failed_at`` (label, step) marks where the root-cause rank stopped.
    """
    usable = {k: [(s, v) for s, v in pts if math.isfinite(v)] for k, pts in series.items()}
    usable = {k: pts for k, pts in usable.items() if pts}
    if not usable:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)  # the Agg backend for this figure only: no pyplot, no global backend switch
    ax = fig.add_subplot()
    for label in sorted(usable, key=_rank_order):
        steps, losses = zip(*usable[label])
        marker = "o" if len(steps) < 40 else None
        ax.plot(steps, losses, marker=marker, markersize=3, linewidth=1.2, label=label)
    if failed_at is not None:
        how = f"{failed_at[0]}: last step before failing"
        ax.axvline(failed_at[1], color="red", linestyle="--", linewidth=1, label=how)
    ax.set_xlabel("global step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def _rank_order(label: str) -> tuple[int, str]:
    """Labels by rank number (``rank-10`` after ``rank-9``), others last."""
    m = _RANK.search(label)
    return (int(m.group(1)) if m else 1 << 30, label)
