"""Code that runs on cluster nodes must also run on Python 3.9 (the Python of Ascend images)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.python39 import PY39  # also imported by tests/collect, tests/transfer

REPO = Path(__file__).resolve().parents[2]
# Everything a node executes: the model package, the node agent and the scripts shipped to nodes.
NODE_SIDE = [
    REPO / "model" / "iflytekspark",
    REPO / "orchestrator" / "agent" / "node_agent.py",
    REPO / "orchestrator" / "agent" / "node_devices.py",
    # shipped next to the agent (orchestrator.agent.client.AGENT_SIBLINGS): the npu-smi parser
    REPO / "orchestrator" / "ascend" / "common.py",
    REPO / "orchestrator" / "ascend" / "npu_smi.py",
    REPO / "orchestrator" / "ascend" / "npu_smi_queries.py",
    REPO / "orchestrator" / "collect" / "node_pack.py",
    REPO / "orchestrator" / "transfer" / "node_receiver.py",
    REPO / "orchestrator" / "sim" / "fake_tools",
    REPO / "orchestrator" / "sim" / "node_init.py",
]


@pytest.mark.skipif(PY39 is None, reason="no Python 3.9 interpreter on this machine")
def test_node_side_code_compiles_on_python39():
    files = [
        str(f) for d in NODE_SIDE for f in (sorted(d.rglob("*.py")) if d.is_dir() else [d]) if f.exists()
    ]
    assert files, "no node-side files found"
    script = "import sys, ast\nfor f in sys.argv[1:]:\n    ast.parse(open(f).read(), f, feature_version=(3, 9))\n    compile(open(f).read(), f, 'exec')\n"
    proc = subprocess.run([PY39, "-c", script, *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_file_shipped_with_the_agent_is_checked():
    from orchestrator.agent.client import AGENT_FILE, AGENT_SIBLINGS

    shipped = {AGENT_FILE.resolve(), *(p.resolve() for p in AGENT_SIBLINGS.values())}
    assert shipped <= {p.resolve() for p in NODE_SIDE}, shipped - set(NODE_SIDE)
