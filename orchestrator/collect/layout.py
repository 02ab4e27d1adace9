"""Where collected files go: ``<out>/<job>/<host>/...`` plus the job-wide index, plot and controller files.

```
<out>/<job>/INDEX.md, index.json, loss.png
<out>/<job>/controller/        job.json, status.json, events.jsonl, monitor.log, node-env.json (each
                               node's sourced CANN environment): the local state folder
<out>/<job>/plan/              the job's copy of its plan folder
<out>/<job>/<host>/MANIFEST.json, node.json   what was packed on the node, and the node at collection
<out>/<job>/<host>/logs/       <job_dir>/output/log: rank and scheduler logs, MindFormers logs
<out>/<job>/<host>/config/     rendered MindFormers YAML;  rank_table.json (rank-table mode)
<out>/<job>/<host>/agent/      the agent's state.json, spec.json, supervisor.log; launch-spec.json
<out>/<job>/<host>/plog/       CANN plogs outside logs/ (per ASCEND_PROCESS_LOG_PATH, or ~/ascend/log)
<out>/<job>/<host>/snapshots/  npu-smi / hccn_tool output taken at collection time
<out>/<job>/<host>/plan/       this node's part of the plan: YAML, env_rank_<R>.sh, commands.sh
```
The default ``<out>`` is ``~/.orchestrate/logs`` (``ORCHESTRATE_HOME/logs``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from orchestrator.jobs.state import home

INDEX_MD, INDEX_JSON, LOSS_PNG, MANIFEST, NODE_FACTS = (
    "INDEX.md",
    "index.json",
    "loss.png",
    "MANIFEST.json",
    "node.json",
)
LOGS, CONFIG, AGENT, PLOG, SNAPSHOTS, PLAN, CONTROLLER = (
    "logs",
    "config",
    "agent",
    "plog",
    "snapshots",
    "plan",
    "controller",
)
RANK_TABLE = "rank_table.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def default_out() -> Path:
    return home() / "logs"


def job_root(out: Optional[Path], job_id: str) -> Path:
    return (out or default_out()) / job_id


def host_dirname(host: str) -> str:
    """A folder name for ``host`` (addresses and host names pass unchanged; IPv6 colons become '_')."""
    name = _UNSAFE.sub("_", host).strip(".")
    return name or "_"


def host_dir(root: Path, host: str) -> Path:
    return root / host_dirname(host)


def snapshot_name(argv: tuple[str, ...] | list[str]) -> str:
    """``snapshots/<tool>-<args>.txt`` for a tool command, e.g. ``snapshots/hccn_tool-i-0-link-g.txt``."""
    words = [_UNSAFE.sub("", w.lstrip("-")) for w in argv]
    return f"{SNAPSHOTS}/{'-'.join(w for w in words if w)}.txt"
