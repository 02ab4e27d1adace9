"""A local checkpoint, checked before anything is pushed: one complete file, or per-rank shards.

Accepted shapes of ``SRC``: a ``.ckpt`` file; a folder holding exactly one ``.ckpt``; or a
``model_dir`` of ``rank_0 .. rank_<N-1>`` folders (contiguous), each holding exactly one non-empty
``.ckpt`` (MindFormers would silently take the newest of several). ``model_dir`` with only ``rank_0``
is a complete checkpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import InputError, Problem

_RANK_DIR = re.compile(r"rank_(\d+)\Z")


@dataclass(frozen=True)
class LocalCheckpoint:
    """``files[r]`` is rank r's shard; a complete checkpoint has one file."""

    source: Path
    files: tuple[Path, ...]

    @property
    def complete(self) -> bool:
        return len(self.files) == 1

    @property
    def shards(self) -> int:
        return len(self.files)


def _one_ckpt(folder: Path, where: str, problems: list[Problem]) -> Path | None:
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".ckpt")
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        problems.append(Problem(where, "checkpoint", f"{len(found)} .ckpt files ({names}); exactly one is needed",
                                "keep one checkpoint per folder (MindFormers would pick the newest)"))  # fmt: skip
        return None
    if found[0].stat().st_size == 0:
        problems.append(Problem(str(found[0]), "checkpoint", "the file is empty", "re-save or re-copy it"))
        return None
    return found[0]


def _rank_folders(src: Path, ranks: dict[int, Path], problems: list[Problem]) -> list[Path]:
    want = set(range(len(ranks)))
    if set(ranks) != want:
        missing = sorted(set(range(max(ranks) + 1)) - set(ranks))
        problems.append(Problem(str(src), "rank folders", f"not contiguous: rank_{missing[0]} is missing "
                                f"(found {', '.join(f'rank_{r}' for r in sorted(ranks))})",
                                "rank folders must be rank_0 .. rank_<N-1>"))  # fmt: skip
    stray = sorted(p.name for p in src.iterdir() if p.is_file() and p.suffix == ".ckpt")
    if stray:
        problems.append(Problem(str(src), "checkpoint", f".ckpt files next to the rank folders: {', '.join(stray)}",
                                "move them into a rank folder or away"))  # fmt: skip
    files = [_one_ckpt(ranks[r], str(ranks[r]), problems) for r in sorted(ranks)]
    return [f for f in files if f is not None]


def inspect_checkpoint(src: Path) -> LocalCheckpoint:
    """The checkpoint at ``src``, or InputError listing every problem with its shape."""
    src = Path(src)
    problems: list[Problem] = []
    if src.is_file():
        if src.suffix != ".ckpt":
            raise InputError(
                [Problem(str(src), "SRC", "not a .ckpt file", "give a .ckpt file or a checkpoint folder")]
            )
        if src.stat().st_size == 0:
            raise InputError([Problem(str(src), "checkpoint", "the file is empty", "re-save or re-copy it")])
        return LocalCheckpoint(src, (src,))
    if not src.is_dir():
        raise InputError(
            [Problem(str(src), "SRC", "no such file or folder", "give an existing checkpoint path")]
        )
    ranks = {int(m.group(1)): p for p in src.iterdir() if p.is_dir() and (m := _RANK_DIR.match(p.name))}
    files = (
        _rank_folders(src, ranks, problems)
        if ranks
        else [f for f in [_one_ckpt(src, str(src), problems)] if f]
    )
    if problems:
        raise InputError(problems)
    return LocalCheckpoint(src, tuple(files))
