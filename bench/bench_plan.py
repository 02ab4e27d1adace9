"""`orchestrate plan` speed for 2 to 1024 Atlas 800T A2 nodes (8 NPUs each), pretrain of 13B.

Per size: make_plan (strategy, memory, rank table, one rendered YAML and 8 launches per node) and
write_plan (the whole folder, replacing the previous repeat's), timed in one call, every size once
per repeat (order rotating). Baseline: the 2-node plan of the same run (no other tool makes these
plans; the question is how the cost grows), ratio = time / baseline time: linear growth means ratio
~ nodes / 2 once the fixed cost is small beside the per-node cost. The rate (nodes/s) stays level
when the cost is linear. ``extra`` holds each folder's file count and bytes.

Run: ``.venv/bin/python bench/bench_plan.py [--repeats 5] [--nodes 2,64,256,1024] [--dir DIR] [--json]``
(``--dir``: where the plan folders go, default a temporary folder in the system's; file creation
costs depend on that file system and on other writers, e.g. /dev/shm against a busy disk).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from harness import Measured, Report, arguments, interleave, log

from orchestrator.inventory.model import ClusterSettings, Inventory, JobDefaults, NodeSpec, SshSettings
from orchestrator.plan.plan_io import write_plan
from orchestrator.plan.planner import make_plan

SIZES = (2, 64, 256, 1024)


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


def case(n: int, folder: Path):
    inv = inventory(n)

    def one() -> Measured:
        t0 = time.perf_counter()
        plan = make_plan(inv, "pretrain")
        t1 = time.perf_counter()
        write_plan(plan, folder / f"p{n}")
        t2 = time.perf_counter()
        size = f"{n} nodes"
        return Measured(
            {("make_plan", size): t1 - t0, ("write_plan", size): t2 - t1, ("plan + write", size): t2 - t0}
        )

    return ("plan + write", f"{n} nodes"), one


def main(argv=None) -> None:
    parser = arguments(__doc__, repeats=5)
    parser.add_argument("--nodes", default=",".join(map(str, SIZES)), help="node counts, e.g. 2,8,64")
    parser.add_argument("--dir", default=None, help="folder to write the plans in (default: a temporary one)")
    args = parser.parse_args(argv)
    sizes = sorted(int(n) for n in args.nodes.split(","))
    report = Report("bench_plan", f"{sizes[0]} nodes", args.repeats, "time", dict(profile="atlas-800t-a2-64g",
                    npus_per_node=8, task="pretrain", model="13b"))  # fmt: skip
    make_plan(inventory(2), "pretrain")  # warm the template cache
    log(f"planning {', '.join(map(str, sizes))} nodes, {args.repeats} repeat(s) ...")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        samples = interleave([case(n, Path(tmp)) for n in sizes], args.repeats)
        for n in sizes:
            files = [p for p in (Path(tmp) / f"p{n}").rglob("*") if p.is_file()]
            report.extra[f"{n} nodes"] = {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}
    groups = ("make_plan", "write_plan", "plan + write")
    report.add({(g, f"{n} nodes"): samples[(g, f"{n} nodes")] for g in groups for n in sizes})
    for g in groups:
        for n in sizes:
            report.rate((g, f"{n} nodes"), n, "nodes")
    report.params["dir"] = "temporary folder in " + (args.dir or tempfile.gettempdir())
    report.emit(args.json)


if __name__ == "__main__":
    main()
