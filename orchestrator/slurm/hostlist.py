"""Slurm host lists: ``node[1-3,07],gpu5`` <-> ``["node1", "node2", "node3", "node07", "gpu5"]``."""

from __future__ import annotations

import re

from orchestrator.errors import InputError

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise InputError(f"host list {text!r}: ']' without '['")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if depth:
        raise InputError(f"host list {text!r}: '[' without ']'")
    return parts + [cur]


def _expand_one(item: str) -> list[str]:
    m = re.match(r"^([^\[]*)\[([^\]]+)\](.*)$", item)
    if not m:
        return [item] if item else []
    prefix, ranges, rest = m.groups()
    out = []
    for r in ranges.split(","):
        rm = _RANGE.match(r.strip())
        if not rm:
            raise InputError(f"host list item {item!r}: {r!r} is not N or N-M")
        lo, hi = rm.group(1), rm.group(2) or rm.group(1)
        if int(hi) < int(lo):
            raise InputError(f"host list item {item!r}: range {r!r} runs backwards")
        width = len(lo) if lo.startswith("0") else 0
        out += [f"{prefix}{str(i).zfill(width)}{tail}" for i in range(int(lo), int(hi) + 1)
                for tail in _expand_one(rest) or [""]]  # fmt: skip
    return out


def expand(text: str) -> list[str]:
    """Every host of a Slurm host list, in order (``(null)`` and empty give none)."""
    text = text.strip()
    if text in ("", "(null)", "None"):
        return []
    return [h for part in _split_top(text) for h in _expand_one(part.strip())]


def compress(hosts: list[str]) -> str:
    """A compact host list (consecutive numbers of the same prefix and width folded into ranges)."""
    groups: dict[tuple[str, int], list[int]] = {}
    order: list[tuple[str, int]] = []
    plain: list[str] = []
    for h in hosts:
        m = re.match(r"^(.*?)(\d+)$", h)
        if not m:
            plain.append(h)
            continue
        width = len(m.group(2)) if m.group(2).startswith("0") else 0
        key = (m.group(1), width)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(int(m.group(2)))
    out = []
    for prefix, width in order:
        nums = sorted(set(groups[(prefix, width)]))
        runs, start = [], nums[0]
        for a, b in zip(nums, nums[1:] + [None]):
            if b != a + 1:
                lo, hi = str(start).zfill(width), str(a).zfill(width)
                runs.append(lo if lo == hi else f"{lo}-{hi}")
                start = b
        out.append(f"{prefix}{runs[0]}" if len(nums) == 1 else f"{prefix}[{','.join(runs)}]")
    return ",".join(out + plain)
