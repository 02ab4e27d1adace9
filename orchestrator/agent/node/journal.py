"""The job's event journal on a node (stdlib, Python 3.9+; node side).

The node-side supervisor appends every event of its job to ``<job folder>/journal.jsonl``: one JSON
object a line, ``{"seq": N, "t": unix time, "kind": ..., ...}`` with ``seq`` counting from 1. Kinds:
``rank-started`` (name, pid, started), ``rank-exited`` (name, exit_code, signal, returncode,
killed_by_agent, ended, end_seq), ``progress`` (name, progress), ``result`` (name, result) and
``state`` (state, stopping, root_cause). The journal is bounded: past ``MAX_BYTES`` the file becomes
``journal.1.jsonl`` (the one older generation kept) and a new one starts, so a reader that fell
further behind gets a ``gap`` and rebuilds from a status snapshot instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any, Dict, List, Optional

Json = Dict[str, Any]
JOURNAL, OLDER = "journal.jsonl", "journal.1.jsonl"
MAX_BYTES = 2 * 1024 * 1024


class Journal:
    """The writer (one per job: the node-side supervisor)."""

    def __init__(self, folder: str, max_bytes: int = MAX_BYTES):
        self.path, self.older, self.max_bytes = (
            os.path.join(folder, JOURNAL),
            os.path.join(folder, OLDER),
            max_bytes,
        )
        self.seq = last_seq(folder)
        self.file = open(self.path, "a", encoding="utf-8")

    def append(self, kind: str, **data: Any) -> int:
        """Write one event (visible to readers at once); its sequence number."""
        self.seq += 1
        line = json.dumps(
            dict(data, seq=self.seq, t=round(time.time(), 3), kind=kind), sort_keys=True, default=str
        )
        self.file.write(line + "\n")
        self.file.flush()
        if self.file.tell() > self.max_bytes:
            self.file.close()
            os.replace(self.path, self.older)
            self.file = open(self.path, "a", encoding="utf-8")
        return self.seq

    def close(self) -> None:
        self.file.close()


def _lines(path: str) -> List[Json]:
    out: List[Json] = []
    with contextlib.suppress(OSError), open(path, encoding="utf-8") as f:
        for line in f:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


def last_seq(folder: str) -> int:
    """The highest sequence number written so far (0: none)."""
    for name in (JOURNAL, OLDER):
        entries = _lines(os.path.join(folder, name))
        if entries:
            return int(entries[-1]["seq"])
    return 0


class JournalReader:
    """Follows the journal from after ``after``: ``read`` returns the complete lines written since."""

    def __init__(self, folder: str, after: int):
        self.folder, self.seq = folder, after
        self.file: Optional[Any] = None
        self.inode: Optional[int] = None
        self.partial = ""

    def _backlog(self) -> List[Json]:
        """Every kept entry past ``seq``, from both generations, and the current file opened at its end."""
        self.close()
        path = os.path.join(self.folder, JOURNAL)
        try:
            self.file = open(path, encoding="utf-8")
            self.inode = os.fstat(self.file.fileno()).st_ino
        except OSError:
            return []
        entries = _lines(os.path.join(self.folder, OLDER)) + self._complete(self.file.read())
        return [e for e in entries if e["seq"] > self.seq]

    def _complete(self, text: str) -> List[Json]:
        text, out = self.partial + text, []
        *lines, self.partial = text.split("\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def rotated(self) -> bool:
        """True when the file read is no longer the journal (the writer started a new one)."""
        try:
            return os.stat(os.path.join(self.folder, JOURNAL)).st_ino != self.inode
        except OSError:
            return False

    def read(self, check_rotation: bool = False) -> List[Json]:
        """New entries past ``seq``; a ``gap`` entry first when some were dropped before being read."""
        if self.file is None or (check_rotation and self.rotated()):
            tail = self._complete(self.file.read()) if self.file is not None else []
            entries = [e for e in tail if e["seq"] > self.seq] + self._backlog()
        else:
            entries = [e for e in self._complete(self.file.read()) if e["seq"] > self.seq]
        entries = sorted({e["seq"]: e for e in entries}.values(), key=lambda e: e["seq"])
        seqs = [self.seq] + [e["seq"] for e in entries]
        holes = [[a + 1, b - 1] for a, b in zip(seqs, seqs[1:]) if b > a + 1]
        if holes:
            entries.insert(0, {"kind": "gap", "seq": self.seq, "missing": holes})
        if entries:
            self.seq = entries[-1]["seq"]
        return entries

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
