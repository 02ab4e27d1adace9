"""plan.json's text, written straight from the dataclasses.

The bytes are those of ``json.dumps(dataclasses.asdict(obj), sort_keys=True, indent=2,
ensure_ascii=False)`` (a test holds the two equal), without the deep copy that ``asdict`` makes and
without the standard library's generator-based indenting encoder: a plan of 8192 ranks has about
a million values. Handles what a Plan holds: dataclasses, tuples/lists, dicts with string keys, str,
int, float, bool and None.
"""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from typing import Any

_STR = json.encoder.encode_basestring  # the C encoder when available, as json.dumps uses
_INF = float("inf")


@lru_cache(maxsize=256)
def _fields(cls: type) -> tuple[tuple[str, str], ...]:
    """(name, encoded key) of ``cls``'s fields in key order."""
    return tuple((name, _STR(name) + ": ") for name in sorted(f.name for f in dataclasses.fields(cls)))


def _float(v: float) -> str:
    """As json writes a float (allow_nan: NaN, Infinity, -Infinity)."""
    if v != v:
        return "NaN"
    if v in (_INF, -_INF):
        return "Infinity" if v > 0 else "-Infinity"
    return float.__repr__(v)


@lru_cache(maxsize=64)
def _pad(level: int) -> str:
    return "\n" + "  " * level


def _strings(v: Any, level: int) -> str:
    """A non-empty list of strings (an argv, an env pair) in one join."""
    inner = _pad(level + 1)
    return "[" + inner + ("," + inner).join(map(_STR, v)) + _pad(level) + "]"


def _items(pairs: Any, level: int, out: list[str]) -> None:
    """``pairs``: (encoded key, value) in key order."""
    inner = _pad(level + 1)
    sep = "{" + inner
    for key, value in pairs:
        kind = type(value)
        if kind is str:  # most values: no call
            out.append(sep + key + _STR(value))
        elif kind is int:
            out.append(sep + key + int.__repr__(value))
        else:
            out.append(sep + key)
            _value(value, level + 1, out)
        sep = "," + inner
    out.append("{}" if sep[0] == "{" else _pad(level) + "}")


def _value(v: Any, level: int, out: list[str]) -> None:
    kind = type(v)
    if kind is str:
        out.append(_STR(v))
    elif v is None or kind is bool:
        out.append("null" if v is None else ("true" if v else "false"))
    elif kind is int:
        out.append(int.__repr__(v))
    elif kind is float:
        out.append(_float(v))
    elif kind is tuple or kind is list:
        if not v:
            out.append("[]")
        elif all(type(x) is str for x in v):
            out.append(_strings(v, level))
        elif all((type(x) is tuple or type(x) is list) and x and all(type(y) is str for y in x) for x in v):
            inner = _pad(level + 1)  # an environment: pairs of strings
            out.append(
                "[" + inner + ("," + inner).join(_strings(x, level + 1) for x in v) + _pad(level) + "]"
            )
        else:
            inner = _pad(level + 1)
            sep = "[" + inner
            for x in v:
                out.append(sep)
                _value(x, level + 1, out)
                sep = "," + inner
            out.append(_pad(level) + "]")
    elif dataclasses.is_dataclass(v):
        _items([(key, getattr(v, name)) for name, key in _fields(kind)], level, out)
    elif isinstance(v, dict):
        _items([(_STR(k) + ": ", x) for k, x in sorted(v.items())], level, out)
    elif isinstance(v, (int, float, str)):  # subclasses (an IntEnum, a str Enum): as json does
        out.append(json.dumps(v, ensure_ascii=False))
    else:
        raise TypeError(f"plan.json cannot hold {kind.__name__} values")


def dataclass_json(obj: Any) -> str:
    """The indented, key-sorted JSON text of dataclass ``obj`` (no trailing newline)."""
    out: list[str] = []
    _value(obj, 0, out)
    return "".join(out)
