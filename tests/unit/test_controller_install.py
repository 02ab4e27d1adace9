"""The controller-only install (`pip install .`, no `model` extra) plans and renders without MindSpore."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Any import of MindSpore or MindFormers fails in this interpreter, as in a controller-only venv.
_SCRIPT = """
import sys

class NoModelStack:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("mindspore", "mindformers", "mindpet"):
            raise ImportError(f"{name} is not installed (controller-only install)")
        return None

sys.meta_path.insert(0, NoModelStack())
from orchestrator.cli.main import main
out, tokenizer, inventories = sys.argv[1], sys.argv[2], sys.argv[3:]
codes = [main(["plan", inv, "--out", f"{out}/{i}", "--set", f"job.tokenizer={tokenizer}"])
         for i, inv in enumerate(inventories)]
print(codes)
"""


def test_plan_needs_no_mindspore(tmp_path):
    from iflytekspark.testing import build_tokenizer

    tokenizer = build_tokenizer(tmp_path / "tokenizer")
    inventories = [str(REPO / "inventories" / n) for n in ("atlas-800t-a2-1node.yaml", "local-cpu.yaml")]
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path), str(tokenizer), *inventories],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[0, 0]"
    assert (tmp_path / "0" / "rank_table.json").exists() and (tmp_path / "1" / "plan.json").exists()
