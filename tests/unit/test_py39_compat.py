"""Code that runs on cluster nodes must also run on Python 3.9 (the Python of Ascend images)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Everything a node executes: the model package and the node agent.
NODE_SIDE = [REPO / "model" / "iflytekspark", REPO / "orchestrator" / "agent"]


@pytest.mark.skipif(shutil.which("python3.9") is None, reason="python3.9 not installed")
def test_node_side_code_compiles_on_python39():
    files = [str(f) for d in NODE_SIDE if d.exists() for f in sorted(d.rglob("*.py"))]
    assert files, "no node-side files found"
    script = "import sys, ast\nfor f in sys.argv[1:]:\n    ast.parse(open(f).read(), f, feature_version=(3, 9))\n    compile(open(f).read(), f, 'exec')\n"
    proc = subprocess.run(["python3.9", "-c", script, *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
