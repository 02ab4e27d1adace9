"""Where a failed job resumes: the newest global step that every rank saved, found on the nodes at once.

Checkpoint *names* cannot tell: MindFormers names files ``<prefix>-<epoch>_<step>.ckpt`` with the step
counted from the start of the *current run*, so after one resume the names restart (``-1_2`` saved at
global step 52) and MindSpore adds ``_1`` to the prefix. The global step is read from inside each file
instead (the ``step_num`` entry MindFormers itself resumes from): a short stdlib script walks the
protobuf records of the file, reading only the record headers and seeking over the tensors, so even
large shards cost a few reads. ``prepare`` then links (or copies) the chosen file of each rank into
``<output>/<resume_dir>/rank_<R>/``, the folder the resumed attempt loads (one file per rank).

MindFormers reads the resume context (step, epoch, loss scale, global batch size: equal on every rank)
from ``rank_0/`` on *every* rank; a node that does not run rank 0 gets its own rank's file of the same
step there too, so no shard crosses the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from orchestrator.errors import TransportError

# argv: list OUT RANK... -> [[rank, name, mtime, step or null], ...]
#       link OUT DEST RANK=SRC_RANK:NAME... -> {"linked": n}
_SCRIPT = r"""import glob, json, os, shutil, struct, sys

def varint(f):
    out = shift = 0
    while True:
        b = f.read(1)
        if not b:
            raise EOFError
        out |= (b[0] & 0x7F) << shift
        if b[0] < 0x80:
            return out
        shift += 7

def fields(buf):
    i = 0
    while i < len(buf):
        key, shift = 0, 0
        while True:
            key |= (buf[i] & 0x7F) << shift; i += 1
            if buf[i - 1] < 0x80: break
            shift += 7
        if key & 7 == 2:
            n, shift = 0, 0
            while True:
                n |= (buf[i] & 0x7F) << shift; i += 1
                if buf[i - 1] < 0x80: break
                shift += 7
            yield key >> 3, buf[i:i + n]; i += n
        elif key & 7 == 0:
            while buf[i] >= 0x80: i += 1
            i += 1
        else:
            return

def scalar(tensor):
    kind, data = "", b""
    for num, val in fields(tensor):
        if num == 2: kind = val.decode()
        elif num == 3: data = val
    if kind.lower() in ("int64", "int32") and len(data) in (4, 8):
        return struct.unpack("<q" if len(data) == 8 else "<i", data)[0]
    return None

def step_of(path, wanted=("step_num", "global_step")):
    found = {}
    with open(path, "rb") as f:
        try:
            while True:
                if varint(f) != 0x0A: break
                size = varint(f); start = f.tell()
                head = f.read(min(size, 200))
                if head[:1] == b"\x0a" and head[1] < 0x80 and head[2:2 + head[1]].decode("utf-8", "replace") in wanted:
                    f.seek(start); rec = f.read(size)
                    tag = tensor = None
                    for num, val in fields(rec):
                        if num == 1: tag = val.decode()
                        elif num == 2: tensor = val
                    if tag and tensor is not None: found[tag] = scalar(tensor)
                f.seek(start + size)
        except (EOFError, IndexError, ValueError):
            pass
    for name in wanted:
        if found.get(name) is not None: return int(found[name])
    return None

out, mode = sys.argv[1], sys.argv[2]
if mode == "list":
    rows = []
    for rank in sys.argv[3:]:
        for p in sorted(glob.glob(os.path.join(out, "checkpoint", "rank_" + rank, "*.ckpt"))):
            rows.append([int(rank), os.path.basename(p), os.stat(p).st_mtime, step_of(p)])
    print(json.dumps(rows))
else:
    dest, n = sys.argv[3], 0
    for item in sys.argv[4:]:
        rank, source = item.split("=", 1)
        src_rank, name = source.split(":", 1)
        src = os.path.join(out, "checkpoint", "rank_" + src_rank, name)
        folder = os.path.join(dest, "rank_" + rank)
        shutil.rmtree(folder, ignore_errors=True); os.makedirs(folder)
        try:
            os.link(src, os.path.join(folder, name))
        except OSError:
            shutil.copy2(src, os.path.join(folder, name))
        n += 1
    print(json.dumps({"linked": n}))
"""


@dataclass(frozen=True)
class SavedCheckpoint:
    """One checkpoint file of one rank on the node that ran it."""

    host: str
    rank: int
    name: str
    mtime: float
    step: Optional[int]  # global step read from the file; None when unreadable


@dataclass(frozen=True)
class ResumePoint:
    """The newest step every rank saved, and the file of each rank at that step."""

    step: int
    files: tuple[tuple[int, str, str], ...]  # (rank, host, file name), by rank


def _answer(res: Any) -> Any:
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise TransportError(f"{res.host}: unreadable checkpoint listing: {res.stdout[-200:]!r}") from None


def list_saved(t: Any, python: str, output_dir: str, ranks: Sequence[int]) -> list[SavedCheckpoint]:
    """The checkpoints of ``ranks`` under ``output_dir``/checkpoint on the node behind ``t``."""
    res = t.run([python, "-c", _SCRIPT, output_dir, "list", *map(str, ranks)], timeout=300)
    return [SavedCheckpoint(t.host, int(r), n, float(m), s) for r, n, m, s in _answer(res)]


def choose(saved: Sequence[SavedCheckpoint], world: int) -> Optional[ResumePoint]:
    """The newest global step held by every rank ``0..world-1`` (pure); None when there is none.
    Two files of a rank at one step (a re-run of that step): the newer one."""
    by_rank: dict[int, dict[int, SavedCheckpoint]] = {r: {} for r in range(world)}
    for c in sorted(saved, key=lambda c: c.mtime):
        if c.step is not None and c.rank in by_rank:
            by_rank[c.rank][c.step] = c
    common = set.intersection(*(set(s) for s in by_rank.values())) if world else set()
    if not common:
        return None
    step = max(common)
    return ResumePoint(step, tuple((r, by_rank[r][step].host, by_rank[r][step].name) for r in range(world)))


def prepare(t: Any, python: str, output_dir: str, resume_dir: str, files: Mapping[int, str]) -> int:
    """Link each rank's chosen file into ``<output_dir>/<resume_dir>/rank_<R>/`` on the node (and the
    node's lowest rank's file into ``rank_0/`` when the node does not run rank 0)."""
    items = [f"{r}={r}:{name}" for r, name in sorted(files.items())]
    if files and 0 not in files:
        low = min(files)
        items.append(f"0={low}:{files[low]}")
    res = t.run(
        [python, "-c", _SCRIPT, output_dir, "link", f"{output_dir}/{resume_dir}", *items], timeout=600
    )
    return int(_answer(res)["linked"])
