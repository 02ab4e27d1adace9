"""Submit -> every rank running on 2 and 8 simulated nodes: the Slurm backend against the SSH backend.

One simulated cluster with a real Slurm (``sim up --slurm``: slurmctld on this host, slurmd in each node);
each size uses one rank per node (plus the dynamic-cluster scheduler), every process the stand-in rank
of bench_launch (tests/launch/fake_rank.py). Both cases are timed from the call to every rank running
and end with the job stopped:
- ``ssh`` (the named baseline): ``launch()`` on the SSH inventory's first N nodes, plan made beforehand;
- ``slurm``: the allocation submitted (sbatch from the login node, over SSH), waited for, its nodes read
  through job steps, the plan made on them, staging and the agents' start step; the allocation is
  cancelled by the stop. Its phases (allocation granted, nodes read) are reported beside it.
Needs root and Slurm (``make setup``). Run: ``.venv/bin/python bench/bench_slurm.py [--repeats 3]
[--nodes 2,8] [--json]``.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_launch import fake, inventory_of, rank_program, stand_in_sets  # noqa: E402
from harness import Measured, Report, Seconds, arguments, interleave, log  # noqa: E402

from orchestrator import sim  # noqa: E402
from orchestrator.inventory import load_inventory  # noqa: E402
from orchestrator.launch.start import launch  # noqa: E402
from orchestrator.launch.stop import stop_job  # noqa: E402
from orchestrator.plan.planner import make_plan  # noqa: E402
from orchestrator.sim import slurm as sim_slurm  # noqa: E402
from orchestrator.slurm.backend import allocated  # noqa: E402

BASELINE, OURS = "ssh", "slurm"


def slurm_inventory(cluster, n: int, folder: Path):
    text = sim_slurm.inventory_path(cluster.name).read_text()
    text = re.sub(r"nodes: \d+", f"nodes: {n}", text, count=1) + "job: {model: tiny}\n"
    path = folder / f"slurm{n}.yaml"
    path.write_text(text)
    return load_inventory(path)


def cases(cluster, folder: Path, sets: list[str], program: str, n: int) -> list:
    group = f"{n} nodes: submit -> all ranks running"
    ssh_inv = inventory_of(cluster, n, folder)
    ssh_plan = fake(make_plan(ssh_inv, "pretrain", sets), program)

    def over_ssh() -> Seconds:
        t0 = time.perf_counter()
        done = launch(ssh_plan, ssh_inv)
        took = time.perf_counter() - t0
        stop_job(done.job, grace=1)
        return Seconds(took)

    def over_slurm() -> Measured:
        phases: dict[str, float] = {}
        t0 = time.perf_counter()

        def say(msg: str) -> None:
            if " holds " in msg:
                phases["allocation granted"] = time.perf_counter() - t0

        with allocated(slurm_inventory(cluster, n, folder), f"bench-{n}", say) as held:
            phases["nodes read"] = time.perf_counter() - t0
            done = launch(fake(make_plan(held, "pretrain", sets), program), held)
        took = time.perf_counter() - t0
        stop_job(done.job, grace=1)
        return Measured({(group, OURS): took, **{(group, f"{OURS}: {k}"): v for k, v in phases.items()}})

    return [((group, BASELINE), over_ssh), ((group, OURS), over_slurm)]


def main(argv=None) -> None:
    ap = arguments(__doc__, 3)
    ap.add_argument("--nodes", default="2,8", help="comma-separated sizes (default 2,8)")
    args = ap.parse_args(argv)
    sizes = sorted(int(n) for n in args.nodes.split(","))
    report = Report("bench_slurm", f"{BASELINE} (the SSH backend's launch)", args.repeats, "speedup",
                    dict(ranks_per_node=1, devices_per_node=1, scheduler=True))  # fmt: skip
    if os.geteuid() != 0:
        report.skip("the simulated cluster needs root")
        report.emit(args.json)
        return
    name = f"bs{os.getpid() % 10000}"
    home = tempfile.mkdtemp(prefix="bench-slurm-")
    os.environ["ORCHESTRATE_HOME"] = home
    log(f"building a {max(sizes)}-node simulated cluster {name} with Slurm ...")
    cluster = sim.up(name, nodes=max(sizes), devices=1, with_slurm=True)
    try:
        folder = Path(home)
        sets = stand_in_sets(folder)
        program = rank_program()
        warm = inventory_of(cluster, max(sizes), folder)  # ships the agent and the code once
        stop_job(launch(fake(make_plan(warm, "pretrain", sets), program), warm).job, grace=1)
        for n in sizes:
            report.add(interleave(cases(cluster, folder, sets, program, n), args.repeats), BASELINE)
            log(f"  {n:2d} nodes done")
    finally:
        sim.down(name)
    rows = {(r["group"], r["case"]): r["median_s"] for r in report.rows()}
    for n in sizes:
        g = f"{n} nodes: submit -> all ranks running"
        report.notes.append(f"{n} nodes: slurm / ssh x{rows[(g, OURS)] / rows[(g, BASELINE)]:.2f}")
    report.emit(args.json)


if __name__ == "__main__":
    main()
