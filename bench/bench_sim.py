"""Bring-up and tear-down times of simulated clusters of 2, 8 and 16 nodes (run by hand, as root).

Baseline: the 2-node cluster of the same run (no other tool builds these clusters; the question is how
the cost grows with the nodes), ratio = time / baseline time. Each repeat brings up and tears down every
size once (order rotating). Up is measured until every node's sshd accepts connections; down until
nothing is left (a leftover resource stops the run: the next cluster would not be clean).

    sudo .venv/bin/python bench/bench_sim.py [--repeats 3] [--nodes 2,8,16] [--json]
"""

from __future__ import annotations

import os
import time

from harness import Measured, Report, arguments, interleave, log

from orchestrator import sim

SIZES = (2, 8, 16)


def case(nodes: int):
    name = f"bench{os.getpid()}"
    size = f"{nodes} nodes"

    def one() -> Measured:
        t0 = time.perf_counter()
        try:
            sim.up(name, nodes=nodes)
        except BaseException:
            sim.down(name)
            raise
        t1 = time.perf_counter()
        sim.down(name)
        t2 = time.perf_counter()
        left = sim.leftovers(name)
        if left:
            raise RuntimeError(f"sim down left {left}")
        return Measured({("up", size): t1 - t0, ("down", size): t2 - t1})

    return ("up", size), one


def main(argv=None) -> None:
    parser = arguments(__doc__, repeats=3, alias="--repeat")
    parser.add_argument("--nodes", default=",".join(map(str, SIZES)), help="cluster sizes, e.g. 2,8,16")
    args = parser.parse_args(argv)
    sizes = sorted(int(n) for n in args.nodes.split(","))
    report = Report("bench_sim", f"{sizes[0]} nodes", args.repeats, "time")
    if os.geteuid() != 0:
        report.skip("the simulated cluster needs root")
    else:
        log(f"simulated clusters of {', '.join(map(str, sizes))} nodes, {args.repeats} repeat(s) ...")
        samples = interleave([case(n) for n in sizes], args.repeats)
        report.add({(g, f"{n} nodes"): samples[(g, f"{n} nodes")] for g in ("up", "down") for n in sizes})
        for g in ("up", "down"):
            for n in sizes:
                report.rate((g, f"{n} nodes"), n, "nodes")
    report.emit(args.json)


if __name__ == "__main__":
    main()
