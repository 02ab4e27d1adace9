"""What a checkpoint on this machine is, read before a job is planned: one complete file, data-parallel
replicas, or shards of a sharded layout.

- a ``.ckpt`` file, or a folder of ``.ckpt`` files (no ``rank_N/``): **complete**;
- ``rank_0/`` only: **complete**;
- ``rank_0 .. rank_<N-1>`` with strategy files beside them (``<path>/strategy/`` of a pulled job folder,
  or ``<job output>/strategy/`` next to a ``checkpoint/`` folder): **shards** of that strategy;
- ``rank_0 .. rank_<N-1>`` without any strategy file: written by a data-parallel job (which saves no
  strategy), so every rank folder holds the complete weights: **replicas**.

``file`` is the checkpoint a complete load uses: the newest step (MindFormers' ``-<epoch>_<step>.ckpt``
names) of the file, the folder or ``rank_0/``; the file's mtime, then its name, decide among unnamed ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from orchestrator.errors import InputError, Problem
from orchestrator.reshard.steps import step_of
from orchestrator.reshard.strategy_files import CHECKPOINT_DIR, STRATEGY_DIR, find_strategy_files

_RANK_DIR = re.compile(r"rank_(\d+)\Z")
COMPLETE, REPLICAS, SHARDS = "complete", "replicas", "shards"


@dataclass(frozen=True)
class CheckpointSource:
    """A local checkpoint as found: ``layout`` complete | replicas | shards; ``ranks`` rank folders
    (0 for a file or a plain folder); ``file`` the one complete checkpoint (None for shards);
    ``root`` the folder holding the ``rank_N/`` folders; ``strategy`` the shards' strategy folder."""

    path: str
    layout: str
    ranks: int
    file: Optional[str]
    root: Optional[str] = None
    strategy: Optional[str] = None


def newest(files: list[Path]) -> Path:
    """The newest checkpoint of one folder: the highest (epoch, step) in its name, else the latest mtime."""
    stepped = [f for f in files if step_of(f.name)]
    if stepped:
        return max(stepped, key=lambda f: (step_of(f.name), f.name))
    return max(files, key=lambda f: (f.stat().st_mtime_ns, f.name))


def _ckpts(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".ckpt" and p.stat().st_size)


def _strategy_folder(path: Path, root: Path) -> Optional[Path]:
    """Where the strategy files of the rank folders in ``root`` are, if anywhere."""
    candidates = [path / STRATEGY_DIR]
    if root.name == CHECKPOINT_DIR:
        candidates.append(root.parent / STRATEGY_DIR)
    return next((c for c in candidates if find_strategy_files(c)), None)


def read_source(path: str, field: str = "job.load_checkpoint") -> Optional[CheckpointSource]:
    """The checkpoint at ``path`` (None when nothing is there); InputError when its shape is unusable."""
    src = Path(path).expanduser()
    if src.is_file():
        if src.suffix != ".ckpt" or not src.stat().st_size:
            raise InputError([Problem(path, field, "not a non-empty .ckpt file",
                                      "give a .ckpt file or a checkpoint folder")])  # fmt: skip
        return CheckpointSource(path, COMPLETE, 0, str(src))
    if not src.is_dir():
        return None
    root = src / CHECKPOINT_DIR if (src / CHECKPOINT_DIR).is_dir() and not _ckpts(src) else src
    ranks = {int(m.group(1)): p for p in root.iterdir() if p.is_dir() and (m := _RANK_DIR.match(p.name))}
    if not ranks:
        files = _ckpts(root)
        if not files:
            raise InputError([Problem(path, field, "no .ckpt file here (nor rank_N/ folders)",
                                      "give a .ckpt file, a folder holding one, or a folder of rank_N/")])  # fmt: skip
        return CheckpointSource(path, COMPLETE, 0, str(newest(files)))
    problems = []
    if sorted(ranks) != list(range(len(ranks))):
        problems.append(Problem(str(root), field, f"rank folders not contiguous: {', '.join(f'rank_{r}' for r in sorted(ranks))}",
                                "rank folders must be rank_0 .. rank_<N-1>"))  # fmt: skip
    empty = [f"rank_{r}" for r in sorted(ranks) if not _ckpts(ranks[r])]
    if empty:
        problems.append(Problem(str(root), field, f"no .ckpt file in {', '.join(empty)}",
                                "let every rank save a checkpoint, or give the one complete file"))  # fmt: skip
    if problems:
        raise InputError(problems)
    first = str(newest(_ckpts(ranks[0])))
    if len(ranks) == 1:
        return CheckpointSource(path, COMPLETE, 1, first, str(root))
    strategy = _strategy_folder(src, root)
    if strategy is not None:
        return CheckpointSource(path, SHARDS, len(ranks), None, str(root), str(strategy))
    return CheckpointSource(path, REPLICAS, len(ranks), first, str(root))
