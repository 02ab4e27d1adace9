"""Typed field readers that collect problems instead of raising, each naming file, line and field.

A reader returns a usable fallback after recording a problem, so validation always runs to the end
and the user sees every problem at once.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Callable, Iterable, Optional, Sequence

from orchestrator.errors import Problem
from orchestrator.inventory.located import Located, child_path

_PARENT = re.compile(r"(.*)(?:\.[^.\[\]]+|\[\d+\])$")


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


class Checker:
    """Reads fields of one located document and collects :class:`Problem` s (deduplicated)."""

    def __init__(self, located: Located, source: str):
        self.lines = located.lines
        self.source = source
        self.problems: list[Problem] = list(located.problems)

    # -- reporting ---------------------------------------------------------------------------
    def line(self, path: str) -> Optional[int]:
        """The line of ``path``, or of its nearest ancestor present in the file."""
        while True:
            if path in self.lines:
                return self.lines[path]
            match = _PARENT.match(path)
            if not match:
                return self.lines.get("")
            path = match.group(1)

    def add(self, path: str, message: str, fix: str = "") -> None:
        problem = Problem(self.source, path, message, fix, self.line(path))
        if problem not in self.problems:
            self.problems.append(problem)

    # -- structure ---------------------------------------------------------------------------
    def mapping(self, value: Any, path: str, known: Sequence[str], required: Sequence[str] = ()) -> dict:
        """``value`` as a mapping; reports a wrong type, unknown keys and missing required keys."""
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.add(
                path or "(top level)",
                f"expected a mapping, got {_type_name(value)}",
                "write `key: value` lines",
            )
            return {}
        for key in value:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                fix = f"did you mean `{close[0]}`?" if close else f"remove it; known keys: {', '.join(known)}"
                self.add(child_path(path, key), "unknown key", fix)
        for key in required:
            if value.get(key) is None:
                self.add(
                    child_path(path, key),
                    "required key is missing",
                    f"add `{key}:` under `{path or 'the top level'}`",
                )
        return value

    def items(self, value: Any, path: str, what: str) -> list:
        """``value`` as a list (None -> [])."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(
                path, f"expected a list of {what}, got {_type_name(value)}", "write `[a, b]` or `- a` lines"
            )
            return []
        return value

    # -- scalars -----------------------------------------------------------------------------
    def string(self, mapping: dict, key: str, path: str, default: Optional[str] = None) -> Optional[str]:
        value = mapping.get(key)
        if value is None:
            return default
        if isinstance(value, str) and value.strip():
            return value
        fix = "quote the value"
        if isinstance(value, dict) and len(value) == 1 and None in value.values():
            fix = f'quote it: "{{{next(iter(value))}}}" (unquoted braces make a YAML mapping)'
        self.add(child_path(path, key), f"expected a non-empty string, got {_type_name(value)}", fix)
        return default

    def integer(
        self, mapping: dict, key: str, path: str, default: Optional[int], low: int, high: Optional[int] = None
    ) -> Optional[int]:
        value = mapping.get(key)
        if value is None:
            return default
        return self.check_int(value, child_path(path, key), low, high, default)

    def check_int(self, value: Any, path: str, low: int, high: Optional[int], default: Any = None) -> Any:
        """``value`` if it is an integer in [low, high], else a problem and ``default``."""
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"expected an integer, got {_type_name(value)}", "write a whole number")
            return default
        if value < low or (high is not None and value > high):
            allowed = f"{low}..{high}" if high is not None else f">= {low}"
            self.add(path, f"{value} is out of range", f"use a value in {allowed}")
            return default
        return value

    def number(self, mapping: dict, key: str, path: str, default: float) -> float:
        value = mapping.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            self.add(child_path(path, key), f"expected a positive number, got {value!r}", "write e.g. 10")
            return default
        return float(value)

    def boolean(self, mapping: dict, key: str, path: str, default: bool) -> bool:
        value = mapping.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.add(child_path(path, key), f"expected true or false, got {value!r}", "write true or false")
            return default
        return value

    def choice(self, mapping: dict, key: str, path: str, default: str, options: Iterable[str]) -> str:
        options = tuple(options)
        value = mapping.get(key)
        if value is None:
            return default
        if isinstance(value, float):  # rank_table_version: 1.0 written without quotes
            value = repr(value)
        if value not in options:
            self.add(
                child_path(path, key),
                f"{value!r} is not one of {', '.join(options)}",
                f"use one of {', '.join(options)}",
            )
            return default
        return value

    def strings(
        self, mapping: dict, key: str, path: str, check: Optional[Callable[[str, str], Any]] = None
    ) -> list:
        """A list of non-empty strings; ``check(value, item_path)`` may report more."""
        out = []
        list_path = child_path(path, key)
        for i, item in enumerate(self.items(mapping.get(key), list_path, "strings")):
            item_path = child_path(list_path, i)
            if not isinstance(item, str) or not item.strip():
                self.add(item_path, f"expected a non-empty string, got {_type_name(item)}", "quote the value")
                continue
            if check is None or check(item, item_path) is not False:
                out.append(item)
        return out

    def env(self, mapping: dict, path: str) -> dict[str, str]:
        """An ``env:`` mapping of variable names to scalar values (kept as strings)."""
        env_path = child_path(path, "env")
        raw = mapping.get("env")
        if raw is not None and not isinstance(raw, dict):
            self.add(env_path, f"expected a mapping, got {_type_name(raw)}", "write `NAME: value` lines")
            return {}
        out = {}
        for name, value in (raw or {}).items():
            var_path = child_path(env_path, name)
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                self.add(var_path, "not a valid environment variable name", "use letters, digits and _")
            elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
                self.add(var_path, f"expected a string, got {_type_name(value)}", 'quote the value, e.g. "1"')
            else:
                out[name] = str(value)
        return out
