"""Strategy files: where MindFormers writes them, finding them locally, gathering them from nodes.

A semi-auto parallel job writes ``<output_dir>/strategy/ckpt_strategy_rank_<R>.ckpt`` on the node of
each rank R (with ``only_save_strategy: True`` it stops right after). With one pipeline stage every
rank's file describes the whole model; with several, each stage's files are merged
(``mindspore.merge_pipeline_strategys``, done by ``offline``) before any transform.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from orchestrator.errors import InputError, Problem

STRATEGY_DIR = "strategy"
CHECKPOINT_DIR = "checkpoint"
_NAME = re.compile(r"ckpt_strategy_rank_(\d+)\.ckpt\Z")


def strategy_name(rank: int) -> str:
    return f"ckpt_strategy_rank_{rank}.ckpt"


def rank_of(name: str) -> Optional[int]:
    """The rank in ``ckpt_strategy_rank_<R>.ckpt``, None for other names."""
    m = _NAME.match(name)
    return int(m.group(1)) if m else None


def find_strategy_files(folder: Path) -> dict[int, Path]:
    """``{rank: path}`` of the per-rank strategy files directly in ``folder`` (empty when none)."""
    if not folder.is_dir():
        return {}
    found = {rank_of(p.name): p for p in folder.iterdir() if p.is_file()}
    return {r: p for r, p in sorted(found.items()) if r is not None}


def check_strategy_files(files: dict[int, Path], world: int, where: str) -> None:
    """InputError unless ranks 0..world-1 each have a non-empty strategy file."""
    missing = [r for r in range(world) if r not in files]
    empty = [r for r, p in files.items() if p.stat().st_size == 0]
    problems = []
    if missing:
        problems.append(Problem(where, "strategy", f"no strategy file for rank(s) {', '.join(map(str, missing))}",
                                "run the job once with only_save_strategy: True and gather again"))  # fmt: skip
    if empty:
        problems.append(Problem(where, "strategy", f"empty strategy file for rank(s) {', '.join(map(str, empty))}",
                                "save the strategy again"))  # fmt: skip
    if problems:
        raise InputError(problems)


_OUTPUT_DIR = re.compile(r"^output_dir:.*$", re.M)


def node_output_dir(node: Any) -> str:
    """The MindFormers ``output_dir`` on a planned node, read from its rendered YAML's top-level
    ``output_dir:`` line (only that line is parsed: launch binds every node of a 1024-node plan)."""
    import yaml

    line = _OUTPUT_DIR.search(node.yaml_text)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    tree = yaml.load(line.group(0), Loader=loader) if line else None
    out = str((tree or {}).get("output_dir") or "output")
    return out if out.startswith("/") else f"{node.job_dir}/{out}"
