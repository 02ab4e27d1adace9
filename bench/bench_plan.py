"""`orchestrate plan` speed for 2 to 64 Atlas 800T A2 nodes (8 NPUs each), pretrain of 13B.

Per size: make_plan (strategy, memory, rank table, one rendered YAML and 8 launches per node) and
write_plan (the whole folder), best of 3. Ratios are against the named baseline, the 2-node plan of
the same run, so the per-node cost shows: linear growth means ratio ~ nodes / 2.

Run: ``.venv/bin/python bench/bench_plan.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from orchestrator.inventory.model import ClusterSettings, Inventory, JobDefaults, NodeSpec, SshSettings
from orchestrator.plan.plan_io import write_plan
from orchestrator.plan.planner import make_plan

SIZES = (2, 8, 16, 32, 64)


def inventory(count: int) -> Inventory:
    ssh = SshSettings()
    nodes = tuple(
        NodeSpec(
            host=f"10.{k // 250}.{k % 250}.1",
            name=f"node{k}",
            devices=tuple(range(8)),
            device_ips=tuple(f"172.{16 + k // 250}.{k % 250}.{d + 1}" for d in range(8)),
            ssh=ssh,
            workdir="/opt/spark",
            python="/usr/bin/python3",
            env=(),
        )
        for k in range(count)
    )
    cluster = ClusterSettings(
        name=f"bench{count}",
        profile="atlas-800t-a2-64g",
        ssh=ssh,
        workdir="/opt/spark",
        python="/usr/bin/python3",
        env=(),
    )
    job = JobDefaults(train_dataset="/data/wiki.mindrecord", load_checkpoint="/ckpt/13b")
    return Inventory(source="<bench>", cluster=cluster, nodes=nodes, job=job)


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    make_plan(inventory(2), "pretrain")  # warm the template cache
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in SIZES:
            inv = inventory(n)
            plan_s = best(lambda inv=inv: make_plan(inv, "pretrain"))
            plan = make_plan(inv, "pretrain")
            write_s = best(lambda plan=plan, n=n: write_plan(plan, Path(tmp) / f"p{n}"))
            rows.append((n, plan_s, write_s))
    base = rows[0][1] + rows[0][2]
    print(
        f"{'nodes':>5} {'ranks':>5} {'make_plan ms':>13} {'write_plan ms':>14} {'total ms':>9} "
        f"{'vs 2-node plan':>15}"
    )
    for n, p, w in rows:
        print(
            f"{n:>5} {n * 8:>5} {p * 1e3:>13.1f} {w * 1e3:>14.1f} {(p + w) * 1e3:>9.1f} {(p + w) / base:>14.1f}x"
        )


if __name__ == "__main__":
    main()
