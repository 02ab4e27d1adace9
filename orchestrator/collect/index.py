"""The index of a collected job: ``INDEX.md`` for people, ``index.json`` for tools.

It names the job and its state, every node (collected or why not), every process with its exit
code and collected log, and the root cause: the monitor's verdict when it gave one, otherwise the
same rule (``jobs.rootcause``) applied to the agents' records fetched from the nodes; with the error
lines of the cause's own log.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from orchestrator.collect import layout
from orchestrator.collect.gather import NodeCollect
from orchestrator.jobs.model import JobStatus, NodeStatus, RankStatus, RootCause
from orchestrator.jobs.rootcause import pick_root_cause
from orchestrator.jobs.state import JobRecord

ERROR_RE = re.compile(
    r"Traceback|Error|ERROR|Exception|FAIL|\bE[A-Z]\d{4}\b|Killed|Segmentation fault|core dumped|Abort"
)
TAIL_BYTES = 64 * 1024
MAX_ERROR_LINES = 30


@dataclass(frozen=True)
class RankEntry:
    """One process of the job as the node's agent recorded it."""

    host: str
    name: str  # rank-<R> | scheduler
    rank: Optional[int]
    exit_code: Optional[int]
    signal: Optional[str]
    killed_by_agent: bool
    log: Optional[str]  # the collected log, relative to the job's folder


@dataclass(frozen=True)
class CauseEntry:
    """The root cause with the error lines of its log."""

    host: str
    what: str  # rank-<R> | scheduler | node
    rank: Optional[int]
    exit_code: Optional[int]
    reason: str
    error_lines: tuple[str, ...]
    log: Optional[str]
    source: str  # "monitor": the controller's verdict; "collected": from the agents' records


@dataclass(frozen=True)
class NodeEntry:
    host: str
    collected: bool
    error: str
    folder: Optional[str]
    files: int
    archive_bytes: int
    agent_state: str  # the agent's final job state on that node, "unknown" without a record
    npus: str  # npu-smi at collection time: health, and processes still holding NPUs
    notes: tuple[str, ...]  # cut files, unreadable files, missing tools, skipped earlier logs


@dataclass(frozen=True)
class Index:
    job_id: str
    task: str
    state: str
    created: float
    started: Optional[float]
    ended: Optional[float]
    collected_at: float
    message: str
    nodes: tuple[NodeEntry, ...]
    ranks: tuple[RankEntry, ...]
    root_cause: Optional[CauseEntry]
    loss_plot: Optional[str]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- reading the collected files
def tail_lines(path: Optional[Path], max_bytes: int = TAIL_BYTES) -> list[str]:
    """The last lines of a local file ([] when it is missing)."""
    if path is None:
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, 2) - max_bytes))
            return fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def error_lines(lines: list[str], limit: int = MAX_ERROR_LINES) -> tuple[str, ...]:
    """The lines that say what went wrong: the last traceback, else lines that look like errors,
    else the last non-empty lines."""
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
    if starts:
        picked = lines[starts[-1] :]
    else:
        picked = [line for line in lines if ERROR_RE.search(line)] or [line for line in lines if line.strip()]
    return tuple(line.rstrip() for line in picked[-limit:])


def rank_log(c: NodeCollect, node_path: str) -> Optional[Path]:
    """The collected copy of a rank log: the file itself, or its rotated copy ``<log>.<mtime>``."""
    local = c.local(node_path)
    if local is not None:
        return local
    rotated = [p for p, _ in c.files if p.startswith(node_path + ".") and p[len(node_path) + 1 :].isdigit()]
    return c.local(max(rotated, key=lambda p: int(p.rsplit(".", 1)[1]))) if rotated else None


def npu_summary(c: NodeCollect) -> str:
    """One line from the collected ``npu-smi info``: unhealthy NPUs, processes still holding NPUs."""
    from orchestrator.ascend.npu_smi import parse_npu_smi_info

    path = c.dir / layout.snapshot_name(["npu-smi", "info"]) if c.dir else None
    if path is None or not path.is_file():
        return "-"
    try:
        info = parse_npu_smi_info(path.read_text(encoding="utf-8", errors="replace"))
    except ValueError as exc:
        return f"npu-smi output not understood: {exc}"
    bad = [f"NPU {n.npu_id} {n.health}" for n in info.npus if n.health != "OK"]
    held = [f"NPU {p.npu_id} by pid {p.pid} {p.name}".rstrip() for p in info.processes]
    parts = [f"{len(info.npus)} NPU(s), " + (", ".join(bad) if bad else "all OK")]
    return "; ".join(parts + ([f"still held: {', '.join(held)}"] if held else []))


def read_agent_state(c: NodeCollect) -> Optional[dict[str, Any]]:
    """The agent's ``state.json`` of the job as collected from the node."""
    path = c.dir / layout.AGENT / "state.json" if c.dir else None
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path else None
    except (OSError, ValueError):
        return None


def agent_node(host: str, state: dict[str, Any], logs: dict[str, Optional[Path]]) -> NodeStatus:
    """A NodeStatus from the agent's ``state.json`` (its final records), for ``jobs.rootcause``."""
    ranks = tuple(
        RankStatus(
            host=host, name=p["name"], rank=p.get("rank"), state="exited" if p.get("ended") else "unknown",
            pid=p.get("pid"), exit_code=p.get("exit_code"), signal=p.get("signal"),
            killed_by_agent=bool(p.get("killed_by_agent")), started=p.get("started"), ended=p.get("ended"),
            log=p.get("log", ""), log_tail=tuple(tail_lines(logs.get(p["name"]), 16 * 1024)[-20:]),
        )
        for p in state.get("processes", [])
    )  # fmt: skip
    return NodeStatus(host, True, state.get("state", "unknown"), state.get("heartbeat"), "", ranks)


# ---------------------------------------------------------------- building
def _rel(path: Optional[Path], root: Path) -> Optional[str]:
    return path.relative_to(root).as_posix() if path is not None else None


def _cause(
    chosen: RootCause, source: str, logs: dict[tuple[str, str], Optional[Path]], root: Path
) -> CauseEntry:
    log = logs.get((chosen.host, chosen.what))
    lines = tail_lines(log) or list(chosen.log_tail)
    return CauseEntry(chosen.host, chosen.what, chosen.rank, chosen.exit_code, chosen.reason,
                      error_lines(lines) if lines else (), _rel(log, root), source)  # fmt: skip


@dataclass
class _Node:
    """One node's share of the index while it is built."""

    entry: NodeEntry
    ranks: list[RankEntry]
    logs: dict[str, Optional[Path]]  # process name -> collected log
    status: Optional[NodeStatus]  # from the agent's records, when collected


def _node(record: JobRecord, host: str, c: NodeCollect, root: Path) -> _Node:
    state = read_agent_state(c) if c.ok else None
    procs = state["processes"] if state else [
        {"name": p.name, "rank": p.rank, "log": p.log} for p in record.processes if p.host == host
    ]  # fmt: skip
    logs = {p["name"]: rank_log(c, p["log"]) if c.ok and p.get("log") else None for p in procs}
    ranks = [RankEntry(host, p["name"], p.get("rank"), p.get("exit_code"), p.get("signal"),
                       bool(p.get("killed_by_agent")), _rel(logs[p["name"]], root)) for p in procs]  # fmt: skip
    notes = [f"cut to its last bytes: {p}" for p in c.truncated] + [f"unreadable: {u}" for u in c.unreadable]
    notes += [f"tool not available: {t}" for t in c.tools_missing]
    notes += [f"{c.skipped_old} file(s) of earlier runs skipped"] if c.skipped_old else []
    cap = f"{c.max_node_bytes / (1 << 20):.0f} MiB" if c.max_node_bytes else "the"
    notes += [f"left out (over {cap} per-node cap): {p}" for p in c.left_out]
    agent_state = state.get("state", "unknown") if state else "unknown"
    entry = NodeEntry(host, c.ok, c.error, _rel(c.dir, root), len(c.files), c.archive_bytes, agent_state,
                      npu_summary(c), tuple(notes))  # fmt: skip
    return _Node(entry, ranks, logs, agent_node(host, state, logs) if state else None)


def build_index(record: JobRecord, status: Optional[JobStatus], collected: dict[str, NodeCollect], root: Path,
                loss_plot: Optional[Path] = None) -> Index:  # fmt: skip
    """The index of ``record``'s job from its last status and what was collected into ``root``."""
    parts = [_node(record, host, c, root) for host, c in collected.items()]
    logs = {(n.entry.host, name): path for n in parts for name, path in n.logs.items()}
    statuses = [n.status for n in parts if n.status is not None]
    if status is not None and status.root_cause is not None:
        cause: Optional[CauseEntry] = _cause(status.root_cause, "monitor", logs, root)
    else:
        found = pick_root_cause(statuses)
        cause = _cause(found, "collected", logs, root) if found else None
    return Index(
        job_id=record.job_id, task=record.task, state=_state(status, statuses), created=record.created,
        started=status.started if status else None, ended=status.ended if status else None,
        collected_at=time.time(), message=status.message if status else "",
        nodes=tuple(n.entry for n in parts), ranks=tuple(r for n in parts for r in n.ranks),
        root_cause=cause, loss_plot=_rel(loss_plot, root),
    )  # fmt: skip


def _state(status: Optional[JobStatus], nodes: Iterable[NodeStatus]) -> str:
    """The controller's state of the job; without one, the agents' (failed if any node failed)."""
    if status is not None:
        return status.state.value
    states = {n.agent_state for n in nodes}
    return "failed" if "failed" in states else states.pop() if len(states) == 1 else "unknown"


# ---------------------------------------------------------------- writing
def _when(t: Optional[float]) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else "-"


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else str(value).replace("|", "\\|")


SOURCES = {"monitor": "the controller's monitor", "collected": "the agent records collected from the nodes"}
ALSO_HERE = (
    f"- `{layout.CONTROLLER}/`: the job's local state (record, status, events, monitor log)",
    f"- `{layout.PLAN}/`: the plan the job ran; `<host>/{layout.PLAN}/`: that node's YAML and env files",
    f"- `<host>/{layout.SNAPSHOTS}/`: npu-smi and hccn_tool output at collection time",
)


def _cause_md(ix: Index) -> list[str]:
    c = ix.root_cause
    if c is None:
        return [
            "Not known (no failed process was recorded)." if ix.state == "failed" else "No process failed."
        ]
    out = [f"**{c.what} on {c.host}**: {c.reason}", ""]
    out += [f"Log: [{c.log}]({c.log})" if c.log else "Log: not collected", ""]
    out += ["```", *c.error_lines, "```", ""] if c.error_lines else []
    return out + [f"_Named by {SOURCES[c.source]}._"]


def _table(head: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]


def _link(path: Optional[str]) -> Optional[str]:
    return f"[{path}]({path})" if path else None


def render_markdown(ix: Index) -> str:
    """INDEX.md: state, root cause with its error lines, processes, nodes, the loss curve."""
    out = [f"# Job {ix.job_id} ({ix.task}): {ix.state.upper()}", ""]
    out += [f"Started {_when(ix.started)}, ended {_when(ix.ended)}, logs collected {_when(ix.collected_at)}."]
    out += [ix.message, "", "## Root cause", "", *_cause_md(ix), "", "## Processes", ""]
    out += _table(("host", "process", "rank", "exit code", "signal", "stopped by agent", "log"),
                  [(r.host, r.name, r.rank, r.exit_code, r.signal, "yes" if r.killed_by_agent else "no", _link(r.log))
                   for r in ix.ranks])  # fmt: skip
    out += ["", "## Nodes", ""]
    out += _table(("host", "collected", "files", "archive bytes", "agent state", "npu-smi now", "notes"),
                  [(n.host, _link(f"{n.folder}/") if n.folder else f"no: {n.error}", n.files, n.archive_bytes,
                    n.agent_state, n.npus, "; ".join(n.notes)) for n in ix.nodes])  # fmt: skip
    plot = f"![loss curve]({ix.loss_plot})" if ix.loss_plot else "No loss lines in the rank logs."
    return "\n".join([*out, "", "## Loss", "", plot, "", "## Also here", "", *ALSO_HERE, ""])


def write_index(ix: Index, root: Path) -> tuple[Path, Path]:
    """Write ``INDEX.md`` and ``index.json`` into the job's folder."""
    md, js = root / layout.INDEX_MD, root / layout.INDEX_JSON
    md.write_text(render_markdown(ix), encoding="utf-8")
    js.write_text(json.dumps(ix.to_dict(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return md, js
