"""`orchestrate sim` without root says so and exits non-zero (fast, no cluster)."""

from __future__ import annotations

import pytest

from orchestrator.cli.main import main
from orchestrator.errors import NotRoot


@pytest.mark.parametrize(
    "argv",
    [["sim", "up", "--nodes", "2"], ["sim", "down"], ["sim", "status"], ["sim", "fault", "kill", "node1"]],
)
def test_sim_needs_root(monkeypatch, capsys, argv):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert main(argv) == NotRoot.exit_code
    assert "needs root" in capsys.readouterr().err


def test_sim_rejects_bad_names(capsys):
    assert main(["sim", "down", "--name", "Bad_Name"]) != 0
    assert "cluster name" in capsys.readouterr().err
