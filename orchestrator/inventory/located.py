"""Located YAML data: plain values plus the line of every field path, and how field paths are built.

Shared by the reader (``load``), the field checks (``fields``) and the builder (``validate``), so none
of them imports another in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from orchestrator.errors import Problem


@dataclass
class Located:
    """Plain YAML data plus the 1-based line of each field path ("" is the document)."""

    data: Any
    lines: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def child_path(parent: str, key: Union[str, int]) -> str:
    """``cluster`` + ``ssh`` -> ``cluster.ssh``; ``nodes`` + 2 -> ``nodes[2]``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key
