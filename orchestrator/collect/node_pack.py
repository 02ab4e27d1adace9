"""Node side of ``collect-logs``: stream one job's files and tool snapshots as a tar.gz on stdout.

Sent as source (``python -c``) with one JSON request argument; runs on the node's Python (3.9+, stdlib
only) and only ever reads on the node: nothing is written, moved or deleted there, so a node whose
disk is full can still be collected. The output is a ``BEGIN`` marker line (shell start-up noise
before it is ignored), then the raw tar.gz, written as it is built: no archive is ever held whole in
memory, here or on the controller. Request keys:

- ``entries``: ``[{"arc", "path", "window", "optional"}]``: a file or folder to pack under the archive
  name ``arc``; with ``window`` only files modified while the job ran (earlier runs' logs are skipped);
  a missing ``optional`` path is no error;
- ``plog_default``: also pack the CANN plog folder of this node's environment
  (``$ASCEND_PROCESS_LOG_PATH`` or ``~/ascend/log``), time-windowed, under ``plog/default``;
- ``state``: the agent's ``state.json`` of the job (its start and end times give the window);
  ``since``: the window start when there is no state (the controller's job creation time);
- ``commands``: ``[{"arc", "argv"}]`` run now (``npu-smi info``, ``hccn_tool ...``), strictly one at a
  time (the Ascend tools must not run concurrently), output packed; ``tool_places``: ``{tool: [path,
  ...]}`` where a tool not on PATH is looked for (hccn_tool: ``<ascend root>/driver/tools/``, ...);
- ``max_file_bytes``: larger files are cut to their last bytes (errors are at the end);
- ``max_total_bytes``: the cap on the bytes packed from this node's files; a file that would pass it
  is left out whole and listed (``left_out`` in the manifest);
- ``disks``: folders whose free space goes into ``node.json`` (a full disk is a common cause).

The archive holds ``MANIFEST.json`` (what was packed, skipped, cut, left out, failed) and ``node.json``.
"""

from __future__ import annotations

import gzip
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
from typing import Any, BinaryIO, Dict, List, Optional, Tuple

BEGIN = "ORCHESTRATE-COLLECT-BEGIN"
COMPRESS_LEVEL = 1  # logs shrink well already at 1; higher levels cost the node's CPU for little
DEFAULT_TOTAL = 2 << 30  # bytes packed from one node's files unless the request says otherwise
DEFAULT_FILE = 64 << 20  # a bigger file is cut to its last bytes unless the request says otherwise
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


class _Exactly:
    """Reads ``size`` bytes of ``f``: zeros if the file shrank meanwhile (``short`` says so)."""

    def __init__(self, f: BinaryIO, size: int):
        self.f, self.left, self.short = f, size, False

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n) if n else b""
        if len(data) < n:
            self.short = True
            data += bytes(n - len(data))
        self.left -= len(data)
        return data


class Packer:
    """Streams files into one tar.gz on ``out``, once each, within a total cap, and keeps the manifest."""

    def __init__(self, out: BinaryIO, max_bytes: int, max_total: int):
        self.gz = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=COMPRESS_LEVEL, mtime=0)
        self.tar = tarfile.open(fileobj=self.gz, mode="w|")  # a stream: written as it is built
        self.max_bytes, self.max_total, self.total = max_bytes, max_total, 0
        self.seen: set = set()
        self.manifest: Json = {"files": [], "errors": [], "skipped_outside_window": 0, "commands": [],
                               "left_out": [], "max_total_bytes": max_total}  # fmt: skip

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
            size = min(st.st_size, self.max_bytes)
            if self.total + size > self.max_total:
                self.manifest["left_out"].append({"path": path, "arc": arc, "size": st.st_size})
                return
            with open(path, "rb") as f:
                f.seek(st.st_size - size)
                info = tarfile.TarInfo(arc)
                info.size, info.mtime, info.mode = size, int(st.st_mtime), 0o600
                body = _Exactly(f, size)
                self.tar.addfile(info, body)  # copied in pieces: never the whole file in memory
        except OSError as e:
            self.manifest["errors"].append({"path": path, "error": e.strerror or str(e)})
            return
        self.seen.add(key)
        self.total += size
        self.manifest["files"].append({"arc": arc, "path": path, "size": st.st_size, "mtime": st.st_mtime,
                                       "truncated": st.st_size > size, "shrank": body.short})  # fmt: skip

    def add_tree(self, path: str, arc: str, window: Optional[Tuple[float, float]], optional: bool) -> None:
        if not os.path.exists(path):
            if not optional:
                self.manifest["errors"].append({"path": path, "error": "not found"})
            return
        for full, rel in walk(path):
            self.add_file(full, f"{arc}/{rel}" if rel else arc, window)

    def close(self) -> None:
        data = json.dumps(self.manifest, indent=1, sort_keys=True).encode()
        self.add_bytes("MANIFEST.json", data, time.time())
        self.tar.close()
        self.gz.close()  # the gzip trailer; ``out`` stays open


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


def pack(request: Json, out: BinaryIO) -> None:
    """Write the archive answering ``request`` (see the module docstring) to ``out``."""
    now = time.time()
    window = run_window(request, now)
    packer = Packer(out, int(request.get("max_file_bytes") or DEFAULT_FILE),
                    int(request.get("max_total_bytes") or DEFAULT_TOTAL))  # fmt: skip
    commands, places = request.get("commands", []), request.get("tool_places") or {}
    for c in commands:  # one at a time, each to its end: the Ascend tools must not overlap
        r = run_command(c["argv"], places=places.get(c["argv"][0]))
        if r["exit_code"] is not None:
            packer.add_bytes(c["arc"], r["output"].encode(), now)
        kept = {k: r[k] for k in ("argv", "exit_code", "error")}
        packer.manifest["commands"].append(dict(kept, arc=c["arc"]))
    entries = list(request.get("entries", []))
    if request.get("plog_default"):
        plog = os.environ.get("ASCEND_PROCESS_LOG_PATH") or os.path.expanduser("~/ascend/log")
        if os.path.isdir(plog):
            entries.append({"arc": "plog/default", "path": plog, "window": True, "optional": True})
    for e in entries:
        packer.add_tree(e["path"], e["arc"], window if e.get("window") else None, bool(e.get("optional")))
    packer.manifest["window"] = list(window)
    facts = node_facts(now, request.get("disks", []))
    packer.add_bytes("node.json", json.dumps(facts, indent=1, sort_keys=True).encode(), now)
    packer.close()


def main(argv: List[str]) -> int:
    out = sys.stdout.buffer
    out.write(f"\n{BEGIN}\n".encode())
    pack(json.loads(argv[0]), out)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
