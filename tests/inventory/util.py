"""Helpers of the inventory tests: parse text, collect the problems."""

from __future__ import annotations

import textwrap
from typing import Optional

import pytest

from orchestrator.errors import InputError, Problem
from orchestrator.inventory import Inventory, parse_inventory

SOURCE = "inv.yaml"


def parse(text: str, base_dir: Optional[str] = None) -> Inventory:
    return parse_inventory(textwrap.dedent(text), SOURCE, base_dir)


def problems(text: str, base_dir: Optional[str] = None) -> list[Problem]:
    """Every problem of ``text`` (which must be invalid)."""
    with pytest.raises(InputError) as info:
        parse(text, base_dir)
    assert all(p.file == SOURCE for p in info.value.problems)
    return list(info.value.problems)


def where(text: str, base_dir: Optional[str] = None) -> set[tuple[Optional[int], str]]:
    """(line, field) of every problem of ``text``."""
    return {(p.line, p.field) for p in problems(text, base_dir)}


def find(found: list[Problem], field: str) -> Problem:
    """The one problem about ``field``."""
    matches = [p for p in found if p.field == field]
    assert len(matches) == 1, (field, found)
    return matches[0]
