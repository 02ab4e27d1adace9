"""Naming the root cause of a failed job (docs/ascend-cluster.md §3).

When a rank dies its peers block in a collective and later kill themselves with SIGTERM (exit 143),
and every rank we stop ends with 143 or -15 too. So the cause is the earliest failure that is not
such a consequence: a rank that exited non-zero on its own (not 143, not stopped by an agent), or a
node that went silent (at the time it was last seen). Only when every failure looks like a
consequence is the earliest of those named.
"""

from __future__ import annotations

import re
from typing import Iterable, Optional

from orchestrator.jobs.model import NodeStatus, RankStatus, RootCause

CONSEQUENCE_CODES = (143, -15)


def is_consequence(rank: RankStatus) -> bool:
    """True for a rank that ended because it was told to (TERM, or stopped by its agent)."""
    return rank.killed_by_agent or rank.exit_code in CONSEQUENCE_CODES or rank.signal == "SIGTERM"


ERROR_LINE = re.compile(r"Error|Exception|Traceback|error:|FAILED|Killed|\bE[IJ]\d{4}\b")


def error_line(lines: Iterable[str]) -> str:
    """The last line of a log tail that reads like an error ('' if none does)."""
    return next((x.strip() for x in reversed(list(lines)) if ERROR_LINE.search(x)), "")


def _rank_cause(r: RankStatus) -> RootCause:
    how = f"exited {r.exit_code}" + (f" ({r.signal})" if r.signal else "")
    last = error_line(r.log_tail)
    return RootCause(
        r.host, r.name, r.rank, r.exit_code, how + (f": {last}" if last else ""), r.ended, r.log_tail
    )


def _node_cause(n: NodeStatus) -> RootCause:
    why = n.error or "stopped answering"
    return RootCause(n.host, "node", None, None, f"node not answering: {why}", n.last_seen, ())


def pick_root_cause(nodes: Iterable[NodeStatus], lost: Iterable[str] = ()) -> Optional[RootCause]:
    """The root cause among ``nodes`` (``lost``: hosts declared unreachable), or None if nothing failed."""
    nodes = list(nodes)
    lost = set(lost)
    own: list[RootCause] = []
    consequences: list[RootCause] = []
    for n in nodes:
        if n.host in lost:
            own.append(_node_cause(n))
        for r in n.ranks:
            if r.failed:
                (consequences if is_consequence(r) else own).append(_rank_cause(r))
    for group in (own, consequences):
        if group:
            return min(group, key=lambda c: (c.time if c.time is not None else float("inf"), c.host, c.what))
    return None
