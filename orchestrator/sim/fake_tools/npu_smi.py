"""The fake ``npu-smi``: ``info``, ``info -l``, ``info -m``, ``info -t board -i N``, ``-v``."""

from __future__ import annotations

import sys
from typing import List

import nodeconf
import printers


def _board(node: dict, npu_id: int, version: str) -> str:
    npu = next(n for n in node["npus"] if n["id"] == npu_id)
    rows = [
        ("Software Version", version),
        ("Firmware Version", "7.5.0.1.129"),
        ("PCIe Bus Info", npu["bus_id"]),
        ("PCI Device ID", "0xD801" if npu["chip_name"].startswith("910A") else "0xD802"),
        ("Chip Count", "1"),
    ]
    return "".join("\t{:<30} : {}\n".format(*row) for row in rows)


def main(argv: List[str]) -> int:
    state = nodeconf.load()
    node, version = state["node"], state["cluster"]["npu_smi_version"]
    if argv == ["-v"]:
        out = printers.npu_smi_version(version)
    elif argv == ["info"]:
        out = printers.npu_smi_info(node, version, nodeconf.live_processes())
    elif argv == ["info", "-l"]:
        out = printers.npu_smi_list(node)
    elif argv == ["info", "-m"]:
        out = printers.npu_smi_map(node)
    elif len(argv) == 5 and argv[:4] == ["info", "-t", "board", "-i"] and argv[4].isdigit():
        if int(argv[4]) not in [n["id"] for n in node["npus"]]:
            sys.stdout.write("The card id is invalid. Please check it.\n")
            return 1
        out = _board(node, int(argv[4]), version)
    else:
        sys.stdout.write("Command error. Usage: npu-smi info [-l | -m | -t board -i ID] | npu-smi -v\n")
        return 1
    sys.stdout.write(out)
    return 0
