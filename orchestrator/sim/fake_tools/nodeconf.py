"""What a fake tool knows about the node it runs on: its hardware, and live processes holding NPUs.

A node's ``/etc/orchestrate-sim/node.json`` (private to the node) names the cluster's hardware JSON and
the node's name; ``$ORCHESTRATE_SIM_NODE_CONF`` overrides its path (for tests on the host).

Live processes: any process on the node may claim an NPU by writing
``/etc/orchestrate-sim/npu-procs/<pid>.json`` = ``{"npu": 0, "pid": <pid>, "name": "python",
"memory_mb": 1000}``. ``npu-smi info`` lists the claim while that pid is alive and drops the file once
it is gone; :func:`register` does it for the calling process.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

CONF = "/etc/orchestrate-sim/node.json"


def conf_path() -> str:
    return os.environ.get("ORCHESTRATE_SIM_NODE_CONF", CONF)


def load() -> Dict[str, Any]:
    """The node's config plus ``cluster`` (the whole hardware) and ``node`` (this node's part)."""
    with open(conf_path()) as f:
        conf = json.load(f)
    with open(conf["hardware"]) as f:
        cluster = json.load(f)
    node = next(n for n in cluster["nodes"] if n["name"] == conf["node"])
    return {"conf": conf, "cluster": cluster, "node": node}


def procs_dir() -> str:
    return os.path.join(os.path.dirname(conf_path()), "npu-procs")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_processes() -> List[Dict[str, Any]]:
    """Registered claims whose process still runs (stale files are removed)."""
    out = []
    folder = procs_dir()
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        path = os.path.join(folder, name)
        try:
            with open(path) as f:
                claim = json.load(f)
        except (OSError, ValueError):
            continue
        if _alive(int(claim["pid"])):
            out.append(
                {
                    "npu": int(claim["npu"]),
                    "pid": int(claim["pid"]),
                    "name": str(claim.get("name", "")),
                    "memory_mb": int(claim.get("memory_mb", 0)),
                    "live": True,
                }
            )
        else:
            try:
                os.remove(path)
            except OSError:
                pass
    return out


def register(npu: int, name: str = "python", memory_mb: int = 1000, pid: Optional[int] = None) -> str:
    """Claim NPU ``npu`` for ``pid`` (default: this process); returns the claim file."""
    pid = os.getpid() if pid is None else pid
    os.makedirs(procs_dir(), exist_ok=True)
    path = os.path.join(procs_dir(), f"{pid}.json")
    with open(path, "w") as f:
        json.dump({"npu": npu, "pid": pid, "name": name, "memory_mb": memory_mb}, f)
    return path
