"""The fake ``hccn_tool -i N <-ip|-link|-net_health|-netdetect|-gateway> -g`` and ``-ping -g address IP``."""

from __future__ import annotations

import sys
from typing import List

import nodeconf
import printers

_GETTERS = {
    "-ip": printers.hccn_ip,
    "-link": printers.hccn_link,
    "-net_health": printers.hccn_net_health,
    "-netdetect": printers.hccn_netdetect,
    "-gateway": printers.hccn_gateway,
}
_USAGE = (
    "Usage: hccn_tool -i DEVICE_ID {-ip|-link|-net_health|-netdetect|-gateway} -g | -ping -g address IP\n"
)


def main(argv: List[str]) -> int:
    if len(argv) < 4 or argv[0] != "-i" or not argv[1].isdigit() or argv[3] != "-g":
        sys.stderr.write(_USAGE)
        return 1
    state = nodeconf.load()
    npu = next((n for n in state["node"]["npus"] if n["id"] == int(argv[1])), None)
    if npu is None:
        sys.stderr.write(f"Invalid device id {argv[1]}\n")
        return 1
    op, rest = argv[2], argv[4:]
    if op in _GETTERS and not rest:
        out = _GETTERS[op](npu)
    elif op == "-ping" and len(rest) == 2 and rest[0] == "address":
        up = npu["link"] == "UP" and printers.reachable_ips(state["cluster"]).get(rest[1], False)
        out = printers.hccn_ping(npu, rest[1], up)
    else:
        sys.stderr.write(_USAGE)
        return 1
    sys.stdout.write(out)
    return 0
