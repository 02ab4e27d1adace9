"""Bring-up and tear-down times of simulated clusters of 2, 8 and 16 nodes (run by hand, as root).

Baseline: the 2-node cluster; the table gives each size's time, its time per node, and its ratio to
the baseline. Up is measured until every node's sshd accepts connections; down until nothing is left.

    sudo .venv/bin/python bench/bench_sim.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from orchestrator import sim

SIZES = (2, 8, 16)


def measure(nodes: int, repeat: int) -> tuple[float, float]:
    """Median seconds of (up, down) for a cluster of ``nodes`` nodes."""
    name = f"bench{os.getpid()}"
    ups, downs = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sim.up(name, nodes=nodes)
        t1 = time.perf_counter()
        sim.down(name)
        t2 = time.perf_counter()
        assert sim.leftovers(name) == []
        ups.append(t1 - t0)
        downs.append(t2 - t1)
    return statistics.median(ups), statistics.median(downs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_sim: skipped, the simulated cluster needs root")
        return
    results = {n: measure(n, args.repeat) for n in SIZES}
    base_up, base_down = results[SIZES[0]]
    print(f"simulated cluster, median of {args.repeat}; baseline = {SIZES[0]} nodes")
    print(
        f"{'nodes':>5}  {'up s':>6}  {'up/node':>7}  {'x base':>6}  {'down s':>6}  {'down/node':>9}  {'x base':>6}"
    )
    for n, (up, down) in results.items():
        print(
            f"{n:>5}  {up:6.2f}  {up / n:7.3f}  {up / base_up:6.2f}  {down:6.2f}  {down / n:9.3f}  {down / base_down:6.2f}"
        )


if __name__ == "__main__":
    main()
