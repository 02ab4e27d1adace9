"""Transport and discovery on 2 to 64 simulated nodes: parallel fan-out against a sequential loop.

Baseline: the same work done node after node over the same transports (``max_workers=1``). Measured,
for each size, in one run on one cluster of the largest size (subsets of its inventory):

- connect + ``true``: a fresh pool each time (SSH handshake, key auth, one command per node);
- ``true`` round trip on open connections (the pool reused);
- discovery (hostname, npu-smi, 3 hccn_tool queries per NPU, 2 NPUs per node).

Median of ``--repeat`` runs. Needs root (network namespaces):

    .venv/bin/python bench/bench_transport.py [--repeat 3] [--devices 2] [--nodes 2,8,16,32,64]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time

from orchestrator import sim
from orchestrator.discover import discover
from orchestrator.inventory import load_inventory
from orchestrator.transport import TransportPool, fan_out

SIZES = (2, 8, 16, 32, 64)


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _true(transport) -> None:
    transport.run(["true"])


def measure(inventory, repeat: int) -> dict[str, tuple[float, float]]:
    """{what: (fan-out seconds, sequential seconds)} for the nodes of ``inventory``."""
    nodes = inventory.nodes
    out = {}

    def cold(workers: int):
        return lambda: fan_out(nodes, _true, max_workers=workers).raise_on_failure()

    out["connect + true"] = (median_time(cold(32), repeat), median_time(cold(1), repeat))
    with TransportPool() as pool:
        fan_out(nodes, _true, pool=pool).raise_on_failure()  # open every connection first

        def warm(workers: int):
            return lambda: fan_out(nodes, _true, max_workers=workers, pool=pool).raise_on_failure()

        out["true (open connections)"] = (median_time(warm(32), repeat), median_time(warm(1), repeat))

        def disc(workers: int):
            def run():
                found = discover(inventory, pool=pool, max_workers=workers)
                assert found.ok, found.differences or found.failures

            return run

        out["discovery"] = (median_time(disc(32), repeat), median_time(disc(1), repeat))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--devices", type=int, default=2, help="NPUs per simulated node")
    parser.add_argument("--nodes", default=",".join(map(str, SIZES)), help="node counts, e.g. 2,8,16,32,64")
    args = parser.parse_args()
    sizes = tuple(sorted(int(n) for n in args.nodes.split(",")))
    if os.geteuid() != 0:
        print("bench_transport needs root (simulated cluster); skipped", file=sys.stderr)
        return 0
    name = f"bt{os.getpid()}"
    cluster = sim.up(name, nodes=max(sizes), devices=args.devices)
    try:
        full = load_inventory(cluster.inventory)
        rows = []
        for size in sizes:
            inv = dataclasses.replace(full, nodes=full.nodes[:size])
            for what, (par, seq) in measure(inv, args.repeat).items():
                rows.append((size, what, par, seq))
    finally:
        sim.down(name)
    print(f"{'nodes':>5}  {'operation':<24} {'fan-out s':>9} {'sequential s':>12} {'speed-up':>8}")
    for size, what, par, seq in rows:
        print(f"{size:>5}  {what:<24} {par:>9.3f} {seq:>12.3f} {seq / par:>7.1f}x")
    print(
        f"(median of {args.repeat}; {args.devices} NPUs per node; {os.cpu_count()} CPUs on this machine; "
        "sequential = the same calls with max_workers=1)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
