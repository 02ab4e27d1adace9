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

# MindFormers writes its logs under $LOCAL_DEFAULT_PATH (default ./output): keep them out of the repo.
os.environ.setdefault("LOCAL_DEFAULT_PATH", f"/tmp/orchestrate-tests-{os.getuid()}/mindformers")

pytest_plugins = [
    f"tests.fixtures.{p.stem}"
    for p in sorted((Path(__file__).parent / "fixtures").glob("*.py"))
    if p.stem != "__init__"
]


def _cluster_missing() -> str:
    """Why the simulated-cluster tests cannot run here ("" when they can)."""
    if os.geteuid() != 0:
        return "needs root for network namespaces: run `make test` as root"
    missing = [
        p
        for p, x in (("openssh-server", "/usr/sbin/sshd"), ("iproute2", "/usr/sbin/ip"))
        if not os.path.exists(x)
    ]
    if missing:
        return f"{', '.join(missing)} not installed: run `make setup` as root (scripts/system-packages.txt)"
    return ""


def pytest_collection_modifyitems(config, items):
    why = _cluster_missing()
    if why:
        skip = pytest.mark.skip(reason=why)
        for item in items:
            if "cluster" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable
