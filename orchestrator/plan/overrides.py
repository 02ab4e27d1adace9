"""``--set key=value``: parsing, routing by prefix, and application to the rendered YAML tree.

``parallel.*`` goes to the strategy, ``model.*`` to the model config, ``job.*`` to the job options;
anything else is a dotted path into the rendered MindFormers YAML (its top-level key must exist).
Values are YAML scalars: ``3``, ``true``, ``1.e-4``, ``"text"``, ``null``; text that YAML reads as a
list or mapping stays text (``job.predict_data=[q1##q2]``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import yaml

from orchestrator.errors import InputError, Problem

SECTIONS = ("parallel", "model", "job")
_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


@dataclass(frozen=True)
class Override:
    """One parsed ``key=value``; ``origin`` says where it was written (for error messages)."""

    key: str
    value: Any
    origin: str = "--set"
    target: str = ""  # forces the section (the planner turns some model.* keys into YAML paths)

    @property
    def section(self) -> str:
        """``parallel``, ``model``, ``job`` or ``yaml``."""
        head = self.key.split(".", 1)[0]
        return self.target or (head if head in SECTIONS else "yaml")

    @property
    def field(self) -> str:
        """The key without its section prefix (the whole key for YAML paths)."""
        return self.key.split(".", 1)[1] if self.section != "yaml" else self.key


def parse_override(text: str, origin: str = "--set") -> Override:
    """``key=value`` -> Override; InputError when malformed."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not sep or not key or any(not p for p in parts) or (parts[0] in SECTIONS and len(parts) < 2):
        raise InputError(
            [
                Problem(
                    origin,
                    text,
                    "expected key=value with a dotted key",
                    "e.g. --set parallel.dp=2 or --set runner_config.epochs=3",
                )
            ]
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise InputError(
            [Problem(origin, key, f"value {raw!r} is not a YAML scalar: {exc}", "quote it")]
        ) from None
    if isinstance(value, (dict, list)):  # not a scalar: the text itself (e.g. predict_data=[q1##q2])
        value = raw.strip()
    elif isinstance(value, str) and _SCIENTIFIC.fullmatch(value):  # YAML 1.1 reads 1e-4 as text
        value = float(value)
    return Override(key, value, origin)


def parse_overrides(job_pairs: Sequence[tuple[str, str]], cli: Sequence[str]) -> list[Override]:
    """The inventory's ``job.set`` pairs, then the command line's ``--set`` (later wins)."""
    out = [parse_override(f"{k}={v}", "inventory job.set") for k, v in job_pairs]
    return out + [parse_override(t) for t in cli]


def by_section(overrides: Sequence[Override], section: str) -> dict[str, Any]:
    """``{field: value}`` of one section, the last occurrence winning."""
    return {o.field: o.value for o in overrides if o.section == section}


def apply_to_tree(tree: dict, overrides: Sequence[Override]) -> dict:
    """Set each YAML-path override in ``tree`` (in place; returned). Unknown top-level keys are errors,
    missing keys below them are created; a list element is addressed by its index."""
    problems = []
    for o in overrides:
        if o.section != "yaml":
            continue
        parts = o.key.split(".")
        if parts[0] not in tree:
            problems.append(
                Problem(
                    o.origin,
                    o.key,
                    f"unknown top-level key {parts[0]!r}",
                    f"use one of {', '.join(sorted(tree))} or parallel./model./job.",
                )
            )
            continue
        node: Any = tree
        for i, part in enumerate(parts[:-1]):
            node = _child(node, part, o, ".".join(parts[: i + 1]), problems)
            if node is None:
                break
        else:
            _set(node, parts[-1], o, problems)
    if problems:
        raise InputError(problems)
    return tree


def _child(node: Any, part: str, o: Override, path: str, problems: list) -> Any:
    if isinstance(node, list):
        if part.isdigit() and int(part) < len(node):
            return node[int(part)]
        problems.append(
            Problem(o.origin, o.key, f"{path}: no list element {part}", f"index 0..{len(node) - 1}")
        )
        return None
    if not isinstance(node, dict):
        problems.append(Problem(o.origin, o.key, f"{path} is a value, not a section", "set the value itself"))
        return None
    if node.get(part) is None:
        node[part] = {}
    return node[part]


def _set(node: Any, leaf: str, o: Override, problems: list) -> None:
    if isinstance(node, dict):
        node[leaf] = o.value
    elif isinstance(node, list) and leaf.isdigit() and int(leaf) < len(node):
        node[int(leaf)] = o.value
    else:
        problems.append(Problem(o.origin, o.key, "cannot set a value here", "address a mapping key"))
