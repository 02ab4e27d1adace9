"""Transport and discovery on 2 to 64 simulated nodes: parallel fan-out against a sequential loop.

Baseline: the same work done node after node over the same transports (``max_workers=1``): what a loop
over the nodes costs, so the ratio is what the fan-out buys. Measured, for each size, in one run on one
cluster of the largest size (subsets of its inventory), each repeat running every case once (order
rotating, so fan-out and sequential alternate):

- connect + ``true``: a fresh pool each time (SSH handshake, key auth, one command per node);
- ``true`` round trip on open connections (the pool reused);
- discovery (hostname, npu-smi, 3 hccn_tool queries per NPU, 2 NPUs per node).

Needs root (network namespaces):

    .venv/bin/python bench/bench_transport.py [--repeats 3] [--devices 2] [--nodes 2,8,16,32,64] [--json]
"""

from __future__ import annotations

import dataclasses
import os
import sys

from harness import Report, arguments, interleave, log

from orchestrator import sim
from orchestrator.discover import discover
from orchestrator.inventory import load_inventory
from orchestrator.transport import TransportPool, fan_out

BASELINE, FAN_OUT = "sequential", "fan-out"
SIZES = (2, 8, 16, 32, 64)


def _true(transport) -> None:
    transport.run(["true"])


def measure(inventory, repeats: int) -> dict:
    """Samples {(group, case): seconds} for the nodes of ``inventory``, fan-out and sequential."""
    nodes, size = inventory.nodes, f"{len(inventory.nodes)} nodes"
    with TransportPool() as pool:
        fan_out(nodes, _true, pool=pool).raise_on_failure()  # open every connection first

        def cold(workers: int):
            return lambda: fan_out(nodes, _true, max_workers=workers).raise_on_failure()

        def warm(workers: int):
            return lambda: fan_out(nodes, _true, max_workers=workers, pool=pool).raise_on_failure()

        def disc(workers: int):
            def run():
                found = discover(inventory, pool=pool, max_workers=workers)
                assert found.ok, found.differences or found.failures

            return run

        cases = []
        for what, make in (("connect + true", cold), ("true (open connections)", warm), ("discovery", disc)):
            group = f"{size}: {what}"
            cases += [((group, BASELINE), make(1)), ((group, FAN_OUT), make(32))]
        return interleave(cases, repeats)


def main(argv=None) -> int:
    parser = arguments(__doc__, repeats=3, alias="--repeat")
    parser.add_argument("--devices", type=int, default=2, help="NPUs per simulated node")
    parser.add_argument("--nodes", default=",".join(map(str, SIZES)), help="node counts, e.g. 2,8,16,32,64")
    args = parser.parse_args(argv)
    sizes = tuple(sorted(int(n) for n in args.nodes.split(",")))
    report = Report("bench_transport", f"{BASELINE} (max_workers=1)", args.repeats, "speedup",
                    dict(devices_per_node=args.devices, fan_out_workers=32))  # fmt: skip
    if os.geteuid() != 0:
        report.skip("the simulated cluster needs root")
        report.emit(args.json)
        return 0
    name = f"bt{os.getpid()}"
    log(f"building a {max(sizes)}-node simulated cluster {name} ...")
    cluster = sim.up(name, nodes=max(sizes), devices=args.devices)
    try:
        full = load_inventory(cluster.inventory)
        for size in sizes:
            log(f"  {size} nodes ...")
            report.add(measure(dataclasses.replace(full, nodes=full.nodes[:size]), args.repeats), BASELINE)
    finally:
        sim.down(name)
    report.emit(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
