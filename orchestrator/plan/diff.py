"""``orchestrate plan --diff OLD``: a unified diff of every file of two plan folders."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Mapping, Union

from orchestrator.errors import OrchestrateError


def folder_files(folder: Union[str, Path]) -> dict[str, str]:
    """``{relative path: text}`` of every file under ``folder`` (empty when it does not exist)."""
    root = Path(folder)
    if not root.is_dir():
        return {}
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        out[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8", errors="replace")
    return out


def diff_files(
    old: Mapping[str, str], new: Mapping[str, str], old_label: str = "old", new_label: str = "new"
) -> str:
    """The unified diff of two ``{path: text}`` maps, file by file in path order ("" when equal)."""
    chunks = []
    for rel in sorted(set(old) | set(new)):
        a, b = old.get(rel), new.get(rel)
        if a == b:
            continue
        chunks.extend(
            difflib.unified_diff(
                (a or "").splitlines(keepends=True),
                (b or "").splitlines(keepends=True),
                fromfile=f"{old_label}/{rel}" if a is not None else "/dev/null",
                tofile=f"{new_label}/{rel}" if b is not None else "/dev/null",
            )
        )
    return "".join(c if c.endswith("\n") else c + "\n" for c in chunks)


def diff_plan_dirs(old_dir: Union[str, Path], new_dir: Union[str, Path]) -> str:
    """The unified diff of two plan folders ("" when they are byte-identical)."""
    return diff_files(folder_files(old_dir), folder_files(new_dir), str(old_dir), str(new_dir))


class PlansDiffer(OrchestrateError):
    """``plan --diff``: the new plan differs from the old folder (exit code 1, the diff printed)."""

    exit_code = 1
