"""The fake ``npu-smi``: ``info``, ``info -l``, ``info -m``, ``info -t board -i N``,
``info -t spod-info -i N -c C`` (Atlas A3) and ``-v``. On an A3 node ``-i N`` names a card (two chips)."""

from __future__ import annotations

import sys
from typing import List

import nodeconf
import printers


def _cards(node: dict) -> List[int]:
    return sorted({n["id"] // node.get("chips_per_npu", 1) for n in node["npus"]})


def _board(node: dict, npu_id: int, version: str) -> str:
    npu = next(n for n in node["npus"] if n["id"] // node.get("chips_per_npu", 1) == npu_id)
    rows = [
        ("Software Version", version),
        ("Firmware Version", "7.5.0.1.129"),
        ("PCIe Bus Info", npu["bus_id"]),
        ("PCI Device ID", "0xD801" if npu["chip_name"].startswith("910A") else "0xD802"),
        ("Chip Count", str(node.get("chips_per_npu", 1))),
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
        if int(argv[4]) not in _cards(node):
            sys.stdout.write("The card id is invalid. Please check it.\n")
            return 1
        out = _board(node, int(argv[4]), version)
    elif len(argv) == 7 and argv[:4] == ["info", "-t", "spod-info", "-i"] and argv[5] == "-c":
        if not (argv[4].isdigit() and argv[6].isdigit()) or int(argv[4]) not in _cards(node):
            sys.stdout.write("The card id is invalid. Please check it.\n")
            return 1
        spod = printers.npu_smi_spod_info(
            node, int(argv[4]), int(argv[6]), int(state["cluster"].get("super_pod_id", 0))
        )
        if spod is None:
            sys.stdout.write("This device does not support querying spod-info.\n")
            return 1
        out = spod
    else:
        sys.stdout.write(
            "Command error. Usage: npu-smi info [-l | -m | -t board -i ID | -t spod-info -i ID -c CHIP] | npu-smi -v\n"
        )
        return 1
    sys.stdout.write(out)
    return 0
