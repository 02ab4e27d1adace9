"""What a push sends: each source file with its destination path, size, mtime and sha256.

Hashes come from a controller cache (``~/.cache/orchestrate/hashes.json``, 0600) keyed by path and
valid while size, mtime, ctime and inode are unchanged, so pushing the same files again re-hashes
nothing. The cache class is the node receiver's own (one implementation on both sides).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from orchestrator.errors import InputError, Problem
from orchestrator.transfer.node_store import HashCache, sha256_file


@dataclass(frozen=True)
class FileEntry:
    """One file as the nodes must end up holding it: ``rel`` is relative to the destination folder."""

    rel: str
    size: int
    mtime_ns: int
    sha256: str

    def header(self, offset: int = 0) -> dict:
        """The stream header announcing this file's bytes from ``offset``."""
        return {"op": "file", "rel": self.rel, "size": self.size, "mtime_ns": self.mtime_ns,
                "sha256": self.sha256, "offset": offset}  # fmt: skip


@dataclass(frozen=True)
class Item:
    """A controller file and the entry it becomes on the nodes."""

    source: Path
    entry: FileEntry


def default_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "orchestrate" / "hashes.json"


def source_files(src: Path) -> list[tuple[Path, str]]:
    """(file, rel) pairs of ``src``: a folder's files (sorted, rel to it) or one file under its name.

    A MindRecord file brings its ``.db`` index along.
    """
    src = Path(src)
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.is_file() and not p.name.endswith(".part"))
        return [(p, p.relative_to(src).as_posix()) for p in files]
    if not src.is_file():
        raise InputError([Problem(str(src), "SRC", "no such file or folder", "give an existing path")])
    out = [(src, src.name)]
    index = src.with_name(src.name + ".db")
    if src.suffix == ".mindrecord" and index.is_file():
        out.append((index, index.name))
    return out


def build_items(pairs: Sequence[tuple[Path, str]], cache: Optional[HashCache] = None) -> list[Item]:
    """Stat and hash each (file, rel); hashes come from ``cache`` when still valid (then saved)."""
    cache = cache if cache is not None else HashCache(str(default_cache_path()))
    items = []
    for path, rel in pairs:
        real = os.path.realpath(path)
        st = os.stat(real)
        items.append(Item(Path(path), FileEntry(rel, st.st_size, st.st_mtime_ns, cache.sha256(real, st))))
    cache.save()
    return items


def prefix_sha256(path: Path, size: int) -> str:
    """sha256 of the first ``size`` bytes of ``path`` (to trust a node's ``.part`` prefix)."""
    return sha256_file(str(path), size)
