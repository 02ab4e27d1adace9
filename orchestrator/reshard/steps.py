"""Choosing one checkpoint per rank: the newest training step that every rank saved.

MindFormers' CheckpointMonitor names files ``<prefix>_rank_<R>-<epoch>_<step in epoch>.ckpt`` and keeps
several per rank folder; ``transform_checkpoints`` would take the last by *name* (``-1_5`` after
``-1_10``), so the step is chosen here and exactly one file per rank is passed on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from orchestrator.errors import InputError, Problem

_NAME = re.compile(r"-(?P<epoch>\d+)_(?P<step>\d+)\.ckpt\Z")


def step_of(name: str) -> Optional[tuple[int, int]]:
    """``(epoch, step in epoch)`` of a MindFormers checkpoint file name, None for other names."""
    m = _NAME.search(name)
    return (int(m["epoch"]), int(m["step"])) if m else None


def tag(step: tuple[int, int]) -> str:
    """``(2, 5)`` -> ``"2_5"``, the form used in file names and by ``--step``."""
    return f"{step[0]}_{step[1]}"


@dataclass(frozen=True)
class Selection:
    """One file name per rank; ``step`` is None when each rank held a single unnamed checkpoint."""

    step: Optional[tuple[int, int]]
    files: tuple[tuple[int, str], ...]  # (rank, file name), by rank

    @property
    def tag(self) -> str:
        return tag(self.step) if self.step else "only"

    def name(self, rank: int) -> str:
        return dict(self.files)[rank]


def _by_step(names: Sequence[str]) -> dict[tuple[int, int], str]:
    out: dict[tuple[int, int], str] = {}
    for name in names:
        step = step_of(name)
        if step is not None:
            out[step] = name
    return out


def select_step(
    names_by_rank: Mapping[int, Sequence[str]], world: int, where: str, step: Optional[str] = None
) -> Selection:
    """The newest step (or ``step``, e.g. ``"1_10"``) held by every rank 0..world-1; InputError naming
    the ranks that lack it. Ranks with one checkpoint each, none named by step, select those files."""
    missing = [r for r in range(world) if not names_by_rank.get(r)]
    if missing:
        raise InputError([Problem(where, "checkpoints", f"no checkpoint for rank(s) {', '.join(map(str, missing))} "
                                  f"of {world}", "let the job save a checkpoint on every rank")])  # fmt: skip
    steps = {r: _by_step(names_by_rank[r]) for r in range(world)}
    if step is not None:
        want = tuple(int(x) for x in step.split("_")) if re.fullmatch(r"\d+_\d+", step) else None
        if want is None:
            raise InputError([Problem("--step", "step", f"{step!r} is not EPOCH_STEP", "e.g. --step 1_10")])
        lacking = [r for r in range(world) if want not in steps[r]]
        if lacking:
            raise InputError([Problem(where, "step", f"step {step} is missing on rank(s) "
                                      f"{', '.join(map(str, lacking))}", "choose a step every rank saved")])  # fmt: skip
        return Selection(want, tuple((r, steps[r][want]) for r in range(world)))
    common = set.intersection(*(set(s) for s in steps.values()))
    if common:
        newest = max(common)
        return Selection(newest, tuple((r, steps[r][newest]) for r in range(world)))
    if all(len(names_by_rank[r]) == 1 and not steps[r] for r in range(world)):
        return Selection(None, tuple((r, names_by_rank[r][0]) for r in range(world)))
    held = "; ".join(
        f"rank_{r}: {', '.join(tag(s) for s in sorted(steps[r])) or 'none'}" for r in range(world)
    )
    raise InputError([Problem(where, "step", f"no step was saved by every rank ({held})",
                              "keep one checkpoint per rank folder or save more often")])  # fmt: skip
