"""Controller-side resharding: merge per-rank shards into one checkpoint, or reshard to a new layout.

The MindSpore work runs in a subprocess (``offline``) with this interpreter, so the CLI never imports
MindSpore. Sources are ``model_dir`` folders of ``rank_<R>/`` sub-folders (a pulled job folder holds
one under ``checkpoint/`` and its strategy files under ``strategy/``); the step is chosen here and
the offline transform sees exactly one file per rank (symlinks in a staging folder).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from orchestrator.errors import InputError, OrchestrateError, Problem
from orchestrator.reshard.steps import Selection, select_step
from orchestrator.reshard.strategy_files import (
    CHECKPOINT_DIR,
    STRATEGY_DIR,
    check_strategy_files,
    find_strategy_files,
)
from orchestrator.transfer.node_store import sha256_file

_RANK = re.compile(r"rank_(\d+)\Z")


class ReshardError(OrchestrateError, RuntimeError):
    """MindSpore could not merge or transform the checkpoint, or replicas disagree."""


def run_offline(args: Sequence[str], python: Optional[str] = None, timeout: float = 3600) -> dict[str, Any]:
    """Run ``python -m orchestrator.reshard.offline ARGS`` and return its JSON answer."""
    cmd = [python or sys.executable, "-m", "orchestrator.reshard.offline", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        noise = ("[WARNING]", "[INFO]")
        tail = [x for x in proc.stderr.splitlines() if x.strip() and not x.startswith(noise)][-8:]
        raise ReshardError(f"offline {args[0]} exited {proc.returncode}:\n" + "\n".join(tail))
    return json.loads(lines[-1])


@dataclass(frozen=True)
class Source:
    """A local distributed checkpoint: ``ranks[r]`` = the checkpoint names in ``root/rank_<r>/``."""

    root: Path
    ranks: dict[int, list[str]]
    strategies: dict[int, Path]

    @property
    def world(self) -> int:
        return len(self.ranks)


def find_ranks(root: Path) -> dict[int, list[str]]:
    """``{rank: checkpoint names}`` of the ``rank_<R>/`` folders in ``root``."""
    return {
        int(m.group(1)): sorted(f.name for f in d.iterdir() if f.suffix == ".ckpt")
        for d in (root.iterdir() if root.is_dir() else ())
        if d.is_dir() and (m := _RANK.match(d.name))
    }


def find_source(path: Path, strategy: Optional[Path] = None) -> Source:
    """``path`` is a pulled job folder (``checkpoint/``, ``strategy/``) or a ``model_dir`` of rank folders;
    ``strategy`` (a folder of per-rank files) overrides the strategy files found next to it."""
    root = path / CHECKPOINT_DIR if (path / CHECKPOINT_DIR).is_dir() else path
    ranks = find_ranks(root)
    if not ranks:
        raise InputError([Problem(str(path), "checkpoint", "no rank_<N>/ folders with checkpoints here",
                                  "give a pulled job folder or a model_dir of rank_N folders")])  # fmt: skip
    if sorted(ranks) != list(range(len(ranks))):
        raise InputError([Problem(str(root), "rank folders", f"not contiguous: {sorted(ranks)}",
                                  "rank folders must be rank_0 .. rank_<N-1>")])  # fmt: skip
    folder = strategy if strategy is not None else path / STRATEGY_DIR
    strategies = find_strategy_files(folder)
    if strategies:
        check_strategy_files(strategies, len(ranks), str(folder))
    return Source(root, ranks, {r: p for r, p in strategies.items() if r < len(ranks)})


def stage(src: Source, sel: Selection, work: Path) -> Path:
    """``work/src/rank_<r>/<file>`` symlinks: exactly one checkpoint per rank, the selected one."""
    base = work / "src"
    for rank, name in sel.files:
        (base / f"rank_{rank}").mkdir(parents=True, exist_ok=True)
        (base / f"rank_{rank}" / name).symlink_to((src.root / f"rank_{rank}" / name).resolve())
    return base


def stage_strategies(src: Source, work: Path) -> Path:
    """The per-rank strategy files in a folder of their own (the merge reads every ``*.ckpt`` in it)."""
    folder = work / "strategy"
    folder.mkdir(parents=True, exist_ok=True)
    for path in src.strategies.values():
        (folder / path.name).symlink_to(path.resolve())
    return folder


@dataclass(frozen=True)
class Merged:
    out: Path
    step: str
    mode: str  # "strategy" (shards merged by their strategy) | "replicated" (data parallel copies)
    world: int


def _replicated(src: Source, sel: Selection, out: Path, weights_only: bool) -> None:
    files = [src.root / f"rank_{r}" / name for r, name in sel.files]
    if len({sha256_file(str(f)) for f in files}) > 1:
        answer = run_offline(["compare", *map(str, files), "--weights-only"])
        if not answer["equal"]:
            raise ReshardError("the ranks' checkpoints differ and no strategy files say how they are sharded: "
                               + "; ".join(answer["differs"][:5]) + " (pull the strategy files too)")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    if weights_only:
        run_offline(["filter", str(files[0]), str(out), "--weights-only"])
    else:
        shutil.copyfile(files[0], out)


def merge(path: Path, out: Optional[Path] = None, step: Optional[str] = None, strategy: Optional[Path] = None,
          weights_only: bool = True) -> Merged:  # fmt: skip
    """One complete checkpoint from the per-rank checkpoints at ``path`` (see ``find_source``).

    With strategy files the shards are merged by them (``transform_checkpoints`` to no strategy);
    without, the ranks are data-parallel copies: they must agree (by hash, else tensor by tensor) and
    rank 0's is taken. ``weights_only`` drops optimizer state and loop counters.
    """
    src = find_source(path, strategy)
    sel = select_step(src.ranks, src.world, str(src.root), step)
    out = out or path / "merged.ckpt"
    if not src.strategies:
        _replicated(src, sel, out, weights_only)
        return Merged(out, sel.tag, "replicated", src.world)
    with tempfile.TemporaryDirectory(prefix="merge-", dir=out.parent if out.parent.exists() else None) as tmp:
        work = Path(tmp)
        args = ["transform", str(stage(src, sel, work)), str(work / "dst"), "--prefix", "merged_",
                "--src-strategy", str(stage_strategies(src, work))]  # fmt: skip
        answer = run_offline(args + (["--weights-only"] if weights_only else []))
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(answer["files"]["0"], out)
    return Merged(out, sel.tag, "strategy", src.world)


def reshard(path: Path, dst: Path, dst_strategy: Optional[Path], step: Optional[str] = None,
            strategy: Optional[Path] = None, prefix: str = "checkpoint_") -> dict[int, Path]:  # fmt: skip
    """Reshard the checkpoint at ``path`` (a complete ``.ckpt``, or rank folders with strategy files) into
    ``dst/rank_<R>/<prefix><R>.ckpt`` for ``dst_strategy`` (a file or folder; None: one complete file).
    ``dst`` must be new or empty, so no stale rank folder survives."""
    if dst.exists() and any(dst.iterdir()):
        raise InputError([Problem(str(dst), "--out", "exists and is not empty", "give a new folder")])
    with tempfile.TemporaryDirectory(prefix="reshard-") as tmp:
        work = Path(tmp)
        loose = sorted(path.glob("*.ckpt")) if path.is_dir() and not find_ranks(path) else []
        path = loose[0] if len(loose) == 1 else path
        if path.is_file():
            (work / "src" / "rank_0").mkdir(parents=True)
            (work / "src" / "rank_0" / path.name).symlink_to(path.resolve())
            args = ["transform", str(work / "src"), str(dst)]
        else:
            src = find_source(path, strategy)
            sel = select_step(src.ranks, src.world, str(src.root), step)
            args = ["transform", str(stage(src, sel, work)), str(dst)]
            if src.strategies:
                args += ["--src-strategy", str(stage_strategies(src, work))]
            elif src.world > 1:
                raise InputError([Problem(str(path), "strategy", f"{src.world} rank shards but no strategy files",
                                          "pass --strategy with the job's ckpt_strategy_rank_N.ckpt files")])  # fmt: skip
        if dst_strategy is not None:
            args += ["--dst-strategy", str(dst_strategy)]
        answer = run_offline(args + ["--prefix", prefix])
    return {int(r): Path(p) for r, p in answer["files"].items()}
