"""What a fake tool knows about the node it runs on: its hardware, and the processes holding NPUs.

A node's ``/etc/orchestrate-sim/node.json`` (private to the node) names the cluster's hardware JSON, the
node's name and address and its Ascend root; ``$ORCHESTRATE_SIM_NODE_CONF`` overrides its path (for
tests on the host).

NPU claims: a process on the node holds an NPU by a file ``/etc/orchestrate-sim/npu-procs/<pid>.json``
= ``{"npu": 0, "pid": <pid>, "name": "python", "memory_mb": 1000}``. ``npu-smi info`` lists the claim
while the process runs and, as a real driver does, for ``npu_release_s`` seconds (hardware file)
after it ended: the first to see it gone (the node's init checks five times a second, npu-smi on every
call) stamps ``exited``, and the claim is dropped once released. :func:`claim` takes an NPU only if no
claim on it is left, under a lock, the way a second process on a held NPU fails.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from typing import Any, Dict, List, Optional, Tuple

CONF = "/etc/orchestrate-sim/node.json"
DEFAULT_RELEASE_S = 3.0


def conf_path() -> str:
    return os.environ.get("ORCHESTRATE_SIM_NODE_CONF", CONF)


def load() -> Dict[str, Any]:
    """The node's config plus ``cluster`` (the whole hardware) and ``node`` (this node's part)."""
    with open(conf_path()) as f:
        conf = json.load(f)
    with open(conf["hardware"]) as f:
        cluster = json.load(f)
    node = next(n for n in cluster["nodes"] if n["name"] == conf["node"])
    node = dict(node, kind=node.get("kind") or cluster.get("kind", "cpu"))
    return {"conf": conf, "cluster": cluster, "node": node}


def procs_dir() -> str:
    return os.path.join(os.path.dirname(conf_path()), "npu-procs")


def start_ticks(pid: int) -> Optional[int]:
    """The process's start time in clock ticks (tells a reused pid apart); None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _alive(claim: Dict[str, Any]) -> bool:
    ticks = start_ticks(int(claim["pid"]))
    return ticks is not None and claim.get("start_ticks") in (None, ticks)


def _read(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write(path: str, claim: Dict[str, Any]) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(claim, f)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def sweep(release_s: float, now: Optional[float] = None) -> List[Dict[str, Any]]:
    """Claims still holding an NPU (running, or ended less than ``release_s`` ago); stamps the newly
    ended ones and removes the released ones (as far as this user may)."""
    now = time.time() if now is None else now
    out = []
    folder = procs_dir()
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        path = os.path.join(folder, name)
        claim = _read(path) if name.endswith(".json") else None
        if claim is None:
            continue
        if claim.get("exited") is None and not _alive(claim):
            claim["exited"] = now
            try:
                _write(path, claim)
            except OSError:
                pass
        if claim.get("exited") is not None and now - float(claim["exited"]) >= release_s:
            try:
                os.remove(path)
            except OSError:
                pass
            continue
        out.append(claim)
    return out


def release_s() -> float:
    try:
        return float(load()["cluster"].get("npu_release_s", DEFAULT_RELEASE_S))
    except (OSError, ValueError, KeyError, StopIteration):
        return DEFAULT_RELEASE_S


def live_processes() -> List[Dict[str, Any]]:
    """The claims npu-smi lists: processes holding an NPU, or ended and not yet released."""
    return [
        {
            "npu": int(c["npu"]),
            "pid": int(c["pid"]),
            "name": str(c.get("name", "")),
            "memory_mb": int(c.get("memory_mb", 0)),
            "live": True,
        }
        for c in sweep(release_s())
    ]


def register(npu: int, name: str = "python", memory_mb: int = 1000, pid: Optional[int] = None) -> str:
    """Claim NPU ``npu`` for ``pid`` (default: this process) without any check; returns the claim file."""
    pid = os.getpid() if pid is None else pid
    os.makedirs(procs_dir(), exist_ok=True)
    path = os.path.join(procs_dir(), f"{pid}.json")
    _write(
        path, {"npu": npu, "pid": pid, "name": name, "memory_mb": memory_mb, "start_ticks": start_ticks(pid)}
    )
    return path


def claim(npu: int, name: str = "python", memory_mb: int = 1000) -> Tuple[bool, List[Dict[str, Any]]]:
    """Take NPU ``npu`` for this process if nothing holds it: (True, []) or (False, the holders)."""
    os.makedirs(procs_dir(), exist_ok=True)
    path = os.path.join(procs_dir(), ".lock")
    try:
        fd = os.open(path, os.O_RDONLY)  # no O_CREAT: another user's file in a sticky folder
    except FileNotFoundError:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        holders = [c for c in sweep(release_s()) if int(c["npu"]) == npu and int(c["pid"]) != os.getpid()]
        if holders:
            return False, holders
        register(npu, name, memory_mb)
        return True, []
    finally:
        os.close(fd)
