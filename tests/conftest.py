"""Shared pytest setup. Fixtures live in tests/fixtures/<area>.py, one module per area, loaded here.

Markers: ``cluster`` (needs root and builds a simulated cluster), ``mindspore`` (starts a MindSpore
process). ``make test-fast`` deselects both.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

# MindFormers writes its logs under $LOCAL_DEFAULT_PATH (default ./output): keep them out of the repo.
os.environ.setdefault("LOCAL_DEFAULT_PATH", f"/tmp/orchestrate-tests-{os.getuid()}/mindformers")

pytest_plugins = [
    f"tests.fixtures.{p.stem}"
    for p in sorted((Path(__file__).parent / "fixtures").glob("*.py"))
    if p.stem != "__init__"
]


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root for network namespaces")
        for item in items:
            if "cluster" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable
