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
    # the agent's zipapp (orchestrator.agent.bundle): its package, the Ascend tool parsers and the receiver
    REPO / "orchestrator" / "agent" / "node",
    REPO / "orchestrator" / "agent" / "zipapp_main.py",
    REPO / "orchestrator" / "ascend",
    REPO / "orchestrator" / "collect" / "node_pack.py",
    # the push receiver and its siblings (orchestrator.transfer.remote.RECEIVER_MODULES)
    REPO / "orchestrator" / "transfer" / "node_receiver.py",
    REPO / "orchestrator" / "transfer" / "node_relay.py",
    REPO / "orchestrator" / "transfer" / "node_store.py",
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
    from orchestrator.agent.bundle import PACKAGE, members

    shipped = {(PACKAGE.parent / path).resolve() for path in members() if path.startswith("orchestrator/")}
    stubs = {PACKAGE / "__init__.py", PACKAGE / "agent" / "__init__.py", PACKAGE / "ascend" / "__init__.py",
             PACKAGE / "transfer" / "__init__.py"}  # fmt: skip
    shipped -= stubs  # empty stand-ins in the zipapp
    checked = {f.resolve() for d in NODE_SIDE for f in (d.rglob("*.py") if d.is_dir() else [d])}
    assert shipped and shipped <= checked, shipped - checked


def test_every_file_shipped_with_the_receiver_is_checked():
    from orchestrator.transfer.remote import RECEIVER_MODULES

    shipped = {Path(m.__file__).resolve() for m in RECEIVER_MODULES}
    checked = {f.resolve() for d in NODE_SIDE for f in (d.rglob("*.py") if d.is_dir() else [d])}
    assert shipped <= checked, shipped - checked
