"""A fake ``npu-smi`` for agent tests whose process table lags like a real one.

``install(folder, npus, ...)`` writes ``folder/bin/npu-smi`` (put it first on PATH) and a claims folder
(``FAKE_NPU_CLAIMS``: ``tests/agent/dummy_rank.py --claim-npu N`` or :func:`dummy_rank.claim` add
claims). ``npu-smi info`` lists a claim while its process runs and, like the driver, for ``linger_s``
more seconds after it exited (from the first time it sees it gone); ``npu-smi info -m`` prints the
logic ids of ``logic`` (a container's renumbering), else the NPU ids. The table uses the driver's
printf formats of docs/ascend-tool-outputs.md (98 columns), so the shared parser reads it as a real one.
"""

# ruff: noqa: UP031  (the driver's printf formats, kept as printf)
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

RULE = "+" + "-" * 27 + "+" + "-" * 15 + "+" + "-" * 52 + "+"
DOUBLE = "+" + "=" * 27 + "+" + "=" * 15 + "+" + "=" * 52 + "+"


def install(
    folder: Path, npus: List[int], linger_s: float = 2.0, logic: Optional[Dict[int, int]] = None
) -> Dict[str, str]:
    """Write the fake tool; the environment entries (PATH, FAKE_NPU_CLAIMS) that make agents use it."""
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    (folder / "claims").mkdir(exist_ok=True)
    config = {"npus": npus, "linger_s": linger_s, "claims": str(folder / "claims"),
              "logic": {str(k): v for k, v in (logic or {}).items()}}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    tool = folder / "bin" / "npu-smi"
    tool.write_text(
        f'#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} {folder / "config.json"} "$@"\n'
    )
    tool.chmod(0o755)
    return {"PATH": f"{tool.parent}:{os.environ['PATH']}", "FAKE_NPU_CLAIMS": config["claims"]}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def listed(config: dict) -> List[dict]:
    """The claims npu-smi lists now; claims of processes gone for longer than ``linger_s`` are dropped."""
    rows, folder = [], Path(config["claims"])
    for path in sorted(folder.glob("*.json")):
        claim = json.loads(path.read_text())
        if not _alive(claim["pid"]):
            claim.setdefault("gone_at", time.time())
            if time.time() - claim["gone_at"] > config["linger_s"]:
                path.unlink()
                continue
            path.write_text(json.dumps(claim))
        rows.append(claim)
    return rows


def info(config: dict) -> str:
    out = ["+" + "-" * 96 + "+", "| npu-smi 25.2.0                   Version: 25.2.0" + " " * 49 + "|", RULE,
           "| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|",
           "| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |",
           DOUBLE]  # fmt: skip
    for npu in config["npus"]:
        out.append("| %-5d %-20s| %-13s | %-11.1f %-17d %-5d/ %-13d |" % (npu, "910B3", "OK", 92.5, 35, 0, 0))
        out.append("| %-26d| %04X:%02X:%02X.%-2X | %-11d %-5d/ %-10d %-5d/ %-13d |"
                   % (0, 0, 0xC1 + npu, 0, 0, 0, 0, 0, 3400, 65536))  # fmt: skip
        out.append(DOUBLE)
    out += [RULE, "| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |",
            DOUBLE]  # fmt: skip
    claims = listed(config)
    for npu in config["npus"]:
        mine = [c for c in claims if c["npu"] == npu]
        for c in mine:
            out.append("| %-7d %-18d| %-13d | %-24s | %-23d |" % (npu, 0, c["pid"], c["name"], 2900))
        if not mine:
            idle = "| No running processes found in NPU %-7d" % npu
            out.append(idle + " " * (97 - len(idle)) + "|")
        out.append(DOUBLE)
    return "\n".join(out) + "\n"


def mapping(config: dict) -> str:
    head = "\t%-30s %-30s %-30s %-30s" % ("NPU ID", "Chip ID", "Chip Logic ID", "Chip Name")
    rows = [head]
    for npu in config["npus"]:
        logic = config["logic"].get(str(npu), npu)
        rows.append("\t%-30d %-30d %-30d %s" % (npu, 0, logic, "Ascend 910B3"))
        rows.append("\t%-30d %-30d %-30s %s" % (npu, 1, "-", "Mcu"))
    return "\n".join(rows) + "\n"


def main(argv: List[str]) -> int:
    config = json.loads(Path(argv[0]).read_text())
    if argv[1:] == ["info"]:
        sys.stdout.write(info(config))
    elif argv[1:] == ["info", "-m"]:
        sys.stdout.write(mapping(config))
    else:
        sys.stdout.write("Command error.\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
