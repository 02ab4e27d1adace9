"""A job's checkpoints and strategy files on one node: list them, hash them, fetch them.

Listing and hashing run a short stdlib script with the node's python (3.9+), so a missing folder is
simply empty and no shell quoting is involved. Fetches are atomic (the transport's ``get``), keep the
node's modification time, and are checked against the node's sha256 when one was taken.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from orchestrator.errors import TransportError
from orchestrator.transfer.node_store import sha256_file

# argv: OUTPUT_DIR list | OUTPUT_DIR hash PATH...
_SCRIPT = """import glob, hashlib, json, os, sys
out, mode = sys.argv[1], sys.argv[2]
if mode == "list":
    found = glob.glob(os.path.join(out, "checkpoint", "rank_*", "*.ckpt"))
    found += glob.glob(os.path.join(out, "strategy", "*.ckpt"))
    rows = []
    for p in sorted(found):
        st = os.stat(p)
        rows.append([os.path.relpath(p, out), st.st_size, st.st_mtime])
    print(json.dumps(rows))
else:
    sums = {}
    for p in sys.argv[3:]:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        sums[p] = h.hexdigest()
    print(json.dumps(sums))
"""


@dataclass(frozen=True)
class RemoteFile:
    """A file under a node's output dir: ``rel`` like ``checkpoint/rank_0/x.ckpt`` or ``strategy/...``."""

    host: str
    output_dir: str
    rel: str
    size: int
    mtime: float
    sha256: Optional[str] = None

    @property
    def path(self) -> str:
        return f"{self.output_dir.rstrip('/')}/{self.rel}"

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]


def _run(transport: Any, python: str, args: list[str], timeout: float) -> Any:
    result = transport.run([python, "-c", _SCRIPT, *args], timeout=timeout)
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise TransportError(f"{transport.host}: unreadable file listing: {result.stdout[-200:]!r}") from None


def list_output(transport: Any, python: str, output_dir: str, timeout: float = 60) -> list[RemoteFile]:
    """Every ``checkpoint/rank_*/*.ckpt`` and ``strategy/*.ckpt`` under ``output_dir`` on the node."""
    rows = _run(transport, python, [output_dir, "list"], timeout)
    return [RemoteFile(transport.host, output_dir, rel, int(size), float(mtime)) for rel, size, mtime in rows]


def hash_files(
    transport: Any, python: str, files: list[RemoteFile], timeout: float = 3600
) -> list[RemoteFile]:
    """``files`` with their sha256 taken on the node."""
    if not files:
        return []
    sums = _run(transport, python, ["/", "hash", *(f.path for f in files)], timeout)
    return [RemoteFile(f.host, f.output_dir, f.rel, f.size, f.mtime, sums[f.path]) for f in files]


def _same(local: Path, f: RemoteFile) -> bool:
    if not local.is_file() or local.stat().st_size != f.size:
        return False
    if f.sha256 is not None:
        return sha256_file(str(local)) == f.sha256
    return abs(local.stat().st_mtime - f.mtime) < 1e-3


def fetch(transport: Any, f: RemoteFile, local: Path) -> bool:
    """Copy ``f`` to ``local`` unless it is there already; True when bytes moved. TransportError when
    the copy does not match the node's sha256."""
    if _same(local, f):
        return False
    local.parent.mkdir(parents=True, exist_ok=True)
    transport.get(f.path, local)
    os.utime(local, (f.mtime, f.mtime))
    if f.sha256 is not None and sha256_file(str(local)) != f.sha256:
        local.unlink()
        raise TransportError(f"{f.host}: {f.path} arrived corrupted (sha256 differs); pull again")
    return True
