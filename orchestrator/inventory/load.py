"""Read an inventory: YAML text to plain data with a line number for every field path, then validate.

PyYAML's composer gives nodes with marks; we walk them ourselves so every value keeps its line
(``nodes[2].devices[1]`` -> 14). Keys are always taken as strings, duplicate keys are problems
(PyYAML would silently keep the last), and ``<<`` merge keys work as in PyYAML.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.errors import InputError, Problem
from orchestrator.inventory.located import Located, child_path
from orchestrator.inventory.model import Inventory
from orchestrator.inventory.validate import build_inventory

SYNTAX_FIELD = "(yaml)"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _syntax_problem(source: str, text: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    message = "; ".join(p for p in parts if p) or str(exc)
    fix = "fix the YAML syntax"
    if mark is not None:
        fix += f" near column {mark.column + 1}"
    lines = text.splitlines()
    if mark is not None and mark.line < len(lines) and "\t" in lines[mark.line][: mark.column + 1]:
        fix = "indent with spaces, not tabs"
    return Problem(source, SYNTAX_FIELD, message, fix, None if mark is None else mark.line + 1)


class _Walker:
    """Turns a composed node tree into plain data, recording lines and YAML-level problems."""

    def __init__(self, source: str):
        self.source = source
        self.constructor = yaml.constructor.SafeConstructor()
        self.out = Located(None)
        self._stack: set[int] = set()

    def problem(self, node: Node, path: str, message: str, fix: str) -> None:
        self.out.problems.append(Problem(self.source, path, message, fix, node.start_mark.line + 1))

    def walk(self, node: Node, path: str) -> Any:
        self.out.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self._stack:
            self.problem(node, path, "recursive alias", "do not nest an anchor inside itself")
            return None
        self._stack.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                return [self.walk(item, child_path(path, i)) for i, item in enumerate(node.value)]
            return self.constructor.construct_object(node, deep=True)
        finally:
            self._stack.discard(id(node))

    def _mapping(self, node: MappingNode, path: str) -> dict[str, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, ScalarNode):
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in seen:
                self.problem(
                    key_node,
                    child_path(path, key_node.value),
                    f"duplicate key (first at line {seen[key_node.value]})",
                    "keep one of them",
                )
            seen.setdefault(key_node.value, line)
        self.constructor.flatten_mapping(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problem(key_node, path, "a key must be a plain name", "use a plain string key")
                continue
            sub = child_path(path, key_node.value)
            self.out.lines[sub] = key_node.start_mark.line + 1
            result[key_node.value] = self.walk(value_node, sub)
        return result


def read_yaml(text: str, source: str) -> Located:
    """Parse ``text``; raise InputError for a syntax error, else return data, lines and problems."""
    try:
        root = yaml.compose(text, Loader=_LOADER)
        if root is None:
            raise InputError(
                [
                    Problem(
                        source,
                        SYNTAX_FIELD,
                        "the inventory is empty",
                        "write a `cluster:` and a `nodes:` section",
                        1,
                    )
                ]
            )
        walker = _Walker(source)
        walker.out.data = walker.walk(root, "")
        return walker.out
    except yaml.YAMLError as exc:
        raise InputError([_syntax_problem(source, text, exc)]) from None


def parse_inventory(text: str, source: str, base_dir: Optional[os.PathLike] = None) -> Inventory:
    """Validate inventory ``text``; raise InputError listing every problem at once.

    ``base_dir`` resolves relative controller paths (ssh key, known_hosts, simulated_hardware);
    without it they must be absolute.
    """
    located = read_yaml(text, source)
    return build_inventory(located, source, None if base_dir is None else Path(base_dir))


def load_inventory(path: Union[str, os.PathLike]) -> Inventory:
    """Read and validate the inventory file at ``path`` (relative paths in it: to its folder)."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(
            [
                Problem(
                    source,
                    SYNTAX_FIELD,
                    f"cannot read the inventory: {reason}",
                    "give the path of a readable UTF-8 YAML file",
                )
            ]
        ) from None
    return parse_inventory(text, source, Path(source).resolve().parent)
