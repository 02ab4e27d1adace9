"""Node side of ``collect-logs``: pack one job's files and tool snapshots into a tar.gz on stdout.

Sent as source (``python -c``) with one JSON request argument; runs on the node's Python (3.9+, stdlib
only) and only ever reads on the node: nothing is written, moved or deleted there. The archive is
base64 between ``BEGIN``/``END`` marker lines, so shell start-up noise cannot corrupt it, and a node
whose disk is full can still be collected. Request keys:

- ``entries``: ``[{"arc", "path", "window", "optional"}]``: a file or folder to pack under the archive
  name ``arc``; with ``window`` only files modified while the job ran (earlier runs' logs are skipped);
  a missing ``optional`` path is no error;
- ``plog_default``: also pack the CANN plog folder of this node's environment
  (``$ASCEND_PROCESS_LOG_PATH`` or ``~/ascend/log``), time-windowed, under ``plog/default``;
- ``state``: the agent's ``state.json`` of the job (its start and end times give the window);
  ``since``: the window start when there is no state (the controller's job creation time);
- ``commands``: ``[{"arc", "argv"}]`` run now (``npu-smi info``, ``hccn_tool ...``), one at a time (the
  Ascend tools must not run concurrently), output packed; ``tool_places``: ``{tool: [path, ...]}`` where a
  tool not on PATH is looked for (hccn_tool: ``<ascend root>/driver/tools/``, /usr/local/Ascend/...);
- ``max_file_bytes``: larger files are cut to their last bytes (errors are at the end);
- ``disks``: folders whose free space goes into ``node.json`` (a full disk is a common cause).

The archive holds ``MANIFEST.json`` (what was packed, skipped, cut, failed) and ``node.json``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from typing import Any, Dict, List, Optional, Tuple

BEGIN, END = "ORCHESTRATE-COLLECT-BEGIN", "ORCHESTRATE-COLLECT-END"
SLACK_S = 30.0  # clock and flush slack around the job's run window
ENV_PREFIXES = ("ASCEND_", "HCCL_", "MS_", "RANK_", "DEVICE_", "LD_LIBRARY_PATH", "PATH", "PYTHONPATH")

Json = Dict[str, Any]


def run_window(request: Json, now: float) -> Tuple[float, float]:
    """(first, last) modification time a file of this job can have, on this node's clock."""
    state: Optional[Json] = None
    if request.get("state"):
        try:
            with open(request["state"]) as f:
                state = json.load(f)
        except (OSError, ValueError):
            state = None
    start = (state or {}).get("started") or request.get("since") or 0.0
    end = (state or {}).get("ended") or now
    return float(start) - SLACK_S, float(end) + SLACK_S


def walk(path: str) -> List[Tuple[str, str]]:
    """(file path, path relative to ``path``) of every regular file under ``path`` (no symlinks)."""
    if os.path.isfile(path):
        return [(path, "")]
    out = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(root, d)))
        for name in sorted(files):
            full = os.path.join(root, name)
            if os.path.isfile(full) and not os.path.islink(full):
                out.append((full, os.path.relpath(full, path)))
    return out


class Packer:
    """Adds files to one in-memory tar.gz, once each, and keeps the manifest."""

    def __init__(self, max_bytes: int):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w:gz", compresslevel=6)
        self.max_bytes = max_bytes
        self.seen: set = set()
        self.manifest: Json = {"files": [], "errors": [], "skipped_outside_window": 0, "commands": []}

    def add_bytes(self, arc: str, data: bytes, mtime: float) -> None:
        info = tarfile.TarInfo(arc)
        info.size, info.mtime, info.mode = len(data), int(mtime), 0o600
        self.tar.addfile(info, io.BytesIO(data))

    def add_file(self, path: str, arc: str, window: Optional[Tuple[float, float]]) -> None:
        try:
            st = os.stat(path)
            key = (st.st_dev, st.st_ino)
            if key in self.seen:
                return
            if window and not window[0] <= st.st_mtime <= window[1]:
                self.manifest["skipped_outside_window"] += 1
                return
            with open(path, "rb") as f:
                f.seek(max(0, st.st_size - self.max_bytes))
                data = f.read(self.max_bytes)
        except OSError as e:
            self.manifest["errors"].append({"path": path, "error": e.strerror or str(e)})
            return
        self.seen.add(key)
        self.add_bytes(arc, data, st.st_mtime)
        self.manifest["files"].append({"arc": arc, "path": path, "size": st.st_size, "mtime": st.st_mtime,
                                       "truncated": st.st_size > len(data)})  # fmt: skip

    def add_tree(self, path: str, arc: str, window: Optional[Tuple[float, float]], optional: bool) -> None:
        if not os.path.exists(path):
            if not optional:
                self.manifest["errors"].append({"path": path, "error": "not found"})
            return
        for full, rel in walk(path):
            self.add_file(full, f"{arc}/{rel}" if rel else arc, window)

    def close(self) -> bytes:
        data = json.dumps(self.manifest, indent=1, sort_keys=True).encode()
        self.add_bytes("MANIFEST.json", data, time.time())
        self.tar.close()
        return self.buf.getvalue()


def find_tool(name: str, places: List[str]) -> Optional[str]:
    """``name`` on PATH, else the first executable of ``places``."""
    found = shutil.which(name)
    return found or next((p for p in places if os.path.isfile(p) and os.access(p, os.X_OK)), None)


def run_command(argv: List[str], timeout: float = 20.0, places: Optional[List[str]] = None) -> Json:
    """Run one tool now (found by :func:`find_tool`); its combined output and exit code, or why it
    could not run."""
    exe = find_tool(argv[0], places or [])
    if exe is None:
        return {"argv": argv, "exit_code": None, "error": "not found", "output": ""}
    try:
        p = subprocess.run([exe] + argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=timeout, env=dict(os.environ, LC_ALL="C"))  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:
        return {"argv": argv, "exit_code": None, "error": f"{type(e).__name__}: {e}", "output": ""}
    return {
        "argv": argv,
        "exit_code": p.returncode,
        "error": "",
        "output": p.stdout.decode("utf-8", "replace"),
    }


def node_facts(now: float, disks: List[str]) -> Json:
    """Who and where this node is at collection time, with free space where the job writes."""
    env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
    usage = {}
    for path in sorted(set(disks) | {os.path.expanduser("~"), "/tmp"}):
        try:
            du = shutil.disk_usage(path)
            usage[path] = {"total": du.total, "free": du.free}
        except OSError:
            continue
    return {"hostname": socket.gethostname(), "time": now, "python": sys.version.split()[0],
            "platform": platform.platform(), "env": dict(sorted(env.items())), "disk": usage}  # fmt: skip


def pack(request: Json) -> bytes:
    """The archive answering ``request`` (see the module docstring)."""
    now = time.time()
    window = run_window(request, now)
    packer = Packer(int(request.get("max_file_bytes") or 64 << 20))
    entries = list(request.get("entries", []))
    if request.get("plog_default"):
        plog = os.environ.get("ASCEND_PROCESS_LOG_PATH") or os.path.expanduser("~/ascend/log")
        if os.path.isdir(plog):
            entries.append({"arc": "plog/default", "path": plog, "window": True, "optional": True})
    for e in entries:
        packer.add_tree(e["path"], e["arc"], window if e.get("window") else None, bool(e.get("optional")))
    commands, places = request.get("commands", []), request.get("tool_places") or {}
    results = [run_command(c["argv"], places=places.get(c["argv"][0])) for c in commands]
    for c, r in zip(commands, results):
        if r["exit_code"] is not None:
            packer.add_bytes(c["arc"], r["output"].encode(), now)
        kept = {k: r[k] for k in ("argv", "exit_code", "error")}
        packer.manifest["commands"].append(dict(kept, arc=c["arc"]))
    packer.manifest["window"] = list(window)
    facts = node_facts(now, request.get("disks", []))
    packer.add_bytes("node.json", json.dumps(facts, indent=1, sort_keys=True).encode(), now)
    return packer.close()


def main(argv: List[str]) -> int:
    data = pack(json.loads(argv[0]))
    out = sys.stdout
    out.write(f"\n{BEGIN}\n")
    encoded = base64.b64encode(data).decode()
    for i in range(0, len(encoded), 1 << 20):
        out.write(encoded[i : i + (1 << 20)])
    out.write(f"\n{END}\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
