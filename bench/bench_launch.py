"""Launch and status speed on 2, 4, 8 and 16 simulated nodes, against a sequential `ssh` loop and `pdsh`.

One simulated cluster of 16 nodes (real sshd); each size uses its first N nodes, one rank per node,
plus the dynamic-cluster scheduler, all running a stand-in rank program (tests/launch/fake_rank.py).
- orchestrate: ``launch()`` from the call to every rank running (preflight, staging incl. the agent and
  the model code, start through the agents), and its start phase alone; code is already cached on
  the nodes for every size (a first warm-up launch ships it), as for any launch after the first;
- baseline, ``ssh loop``: the same processes started detached with the same environment, one ``ssh``
  per node in a loop: the plain way to start a job on N nodes, so the ratio is what launch's fan-out
  buys (or what its checks cost); ``pdsh -R ssh`` (fan-out 32) is a second reference;
- status: one round trip of the monitor (agent ``status`` on every node at once over kept-open
  connections) against the ``ssh loop`` running the same agent ``status`` node after node.
Each repeat runs orchestrate, the ssh loop and pdsh once per size (order rotating); medians reported.
Needs root. Run: ``.venv/bin/python bench/bench_launch.py [--repeats 3] [--nodes 2,4,8,16] [--json]``.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness import Measured, Report, Seconds, arguments, interleave, log  # noqa: E402

from orchestrator import sim  # noqa: E402
from orchestrator.inventory import load_inventory  # noqa: E402
from orchestrator.jobs.state import JobDir  # noqa: E402
from orchestrator.launch import agent_rpc  # noqa: E402
from orchestrator.launch.monitor import Monitor  # noqa: E402
from orchestrator.launch.start import launch  # noqa: E402
from orchestrator.launch.stop import stop_job  # noqa: E402
from orchestrator.plan.planner import make_plan  # noqa: E402
from tests.launch.conftest import FAKE_RANK, one_rank_per_node  # noqa: E402

SIZES = (2, 4, 8, 16)
BASELINE, OURS = "ssh loop", "orchestrate"


def rank_program() -> str:
    """The stand-in rank, copied where every simulated node can read it (/tmp is shared; the checkout is not)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-launch-", dir="/tmp"))
    folder.chmod(0o755)
    copy = folder / FAKE_RANK.name
    shutil.copyfile(FAKE_RANK, copy)
    copy.chmod(0o644)
    return str(copy)


def fake(plan, program: str):
    """``plan`` with every process running the stand-in rank under its node's own Python."""

    def one(n, x):
        argv = (n.python, program, "--steps", "100", "--step-s", "0.2", "--out", f"{x.cwd}/out")
        return dataclasses.replace(x, argv=argv)

    nodes = tuple(dataclasses.replace(n, launches=tuple(one(n, x) for x in n.launches)) for n in plan.nodes)
    return dataclasses.replace(plan, nodes=nodes)


def inventory_of(cluster, n: int, folder: Path):
    text = one_rank_per_node(Path(cluster.inventory).read_text())
    head, nodes = text.split("nodes:\n")
    entries = nodes.split("  - host:")[1 : n + 1]
    path = folder / f"inv{n}.yaml"
    path.write_text(head + "nodes:\n" + "".join("  - host:" + e for e in entries))
    return load_inventory(path)


def ssh_base(cluster) -> list[str]:
    return ["ssh", "-i", str(cluster.key), "-o", f"UserKnownHostsFile={cluster.known_hosts}", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-l", "root"]  # fmt: skip


def start_line(plan, host: str, tag: str) -> str:
    """Shell that starts the node's processes detached, as the agent would (own session, logs)."""
    parts = []
    for x in plan.node(host).launches:
        env = " ".join(shlex.quote(f"{k}={v}") for k, v in x.env)
        log = f"/tmp/bench-{tag}-{x.name}.log"
        argv = " ".join(shlex.quote(a) for a in x.argv)
        cwd = shlex.quote(x.cwd)
        parts.append(f"mkdir -p {cwd}; cd {cwd}; env {env} setsid {argv} > {log} 2>&1 < /dev/null & echo $!;")
    return " ".join(parts)


def ssh_loop(cluster, plan) -> tuple[float, dict[str, list[str]]]:
    pids = {}
    t0 = time.perf_counter()
    for node in plan.nodes:
        out = subprocess.run(ssh_base(cluster) + [node.host, start_line(plan, node.host, "ssh")], check=True,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        pids[node.host] = out.stdout.split()
    return time.perf_counter() - t0, pids


def pdsh(cluster, plan) -> tuple[float, dict[str, list[str]]]:
    hosts = ",".join(n.host for n in plan.nodes)
    env = dict(os.environ, PDSH_SSH_ARGS_APPEND=" ".join(ssh_base(cluster)[1:]))
    # pdsh sends one command to all: each node picks its own start line by address.
    cases = " ".join(f"{n.host}) {start_line(plan, n.host, 'pdsh')} ;;" for n in plan.nodes)
    script = f"case $(hostname -I | awk '{{print $1}}') in {cases} esac"
    t0 = time.perf_counter()
    out = subprocess.run(["pdsh", "-R", "ssh", "-f", "32", "-w", hosts, script], check=True, capture_output=True,
                         text=True, env=env, timeout=120)  # fmt: skip
    took = time.perf_counter() - t0
    pids: dict[str, list[str]] = {}
    for line in out.stdout.splitlines():
        host, _, pid = line.partition(": ")
        pids.setdefault(host.strip(), []).append(pid.strip())
    return took, pids


def status_loop(cluster, inv, job_id: str) -> float:
    t0 = time.perf_counter()
    for n in inv.nodes:
        argv = [n.python, agent_rpc.agent_path(n.workdir), "--workdir", agent_rpc.agent_workdir(n.workdir), "status",
                "--job", job_id, "--lines", "20", "--cpu-sample", "0"]  # fmt: skip
        subprocess.run(
            ssh_base(cluster) + [n.host, shlex.join(argv)], check=True, capture_output=True, timeout=60
        )
    return time.perf_counter() - t0


def kill_baselines(cluster, pids: dict[str, list[str]]) -> None:
    """End the baseline processes by their pids (each in its node)."""
    for node in cluster.nodes:
        if pids.get(node.host):
            cluster.exec(node.hostname, ["kill", "-9", *pids[node.host]])


def cases(cluster, inv, plan, n: int) -> list:
    """The three ways to start the job on ``n`` nodes, each ending with nothing left running."""
    launch_group, status_group = f"{n} nodes: launch", f"{n} nodes: status round trip"

    def ours() -> Measured:
        t0 = time.perf_counter()
        done = launch(plan, inv)
        took = time.perf_counter() - t0
        mon = Monitor(done.job)
        mon.refresh(timeout=30)  # connect once
        t1 = time.perf_counter()
        mon.refresh(timeout=30)
        status_ours = time.perf_counter() - t1
        mon.pool.shutdown()
        status_seq = status_loop(cluster, inv, done.job.job_id)
        mon.nodes.close()
        stop_job(JobDir(done.job.job_id), grace=1)
        return Measured({(launch_group, OURS): took, (launch_group, f"{OURS} (start phase only)"): done.start_s,
                         (status_group, OURS): status_ours, (status_group, BASELINE): status_seq})  # fmt: skip

    def baseline(start) -> Seconds:
        took, pids = start(cluster, plan)
        kill_baselines(cluster, pids)
        return Seconds(took)

    return [((launch_group, OURS), ours), ((launch_group, BASELINE), lambda: baseline(ssh_loop)),
            ((launch_group, "pdsh"), lambda: baseline(pdsh))]  # fmt: skip


def main(argv=None) -> None:
    parser = arguments(__doc__, repeats=3)
    parser.add_argument("--nodes", default=",".join(map(str, SIZES)), help="node counts, e.g. 2,4,8,16")
    args = parser.parse_args(argv)
    sizes = sorted(int(n) for n in args.nodes.split(","))
    report = Report("bench_launch", f"{BASELINE} (one ssh per node, in turn)", args.repeats, "speedup",
                    dict(ranks_per_node=1, scheduler=True, pdsh_fanout=32))  # fmt: skip
    if os.geteuid() != 0:
        report.skip("the simulated cluster needs root")
        report.emit(args.json)
        return
    name = f"bl{os.getpid() % 10000}"
    home = tempfile.mkdtemp(prefix="bench-launch-")
    os.environ["ORCHESTRATE_HOME"] = home
    log(f"building a {max(sizes)}-node simulated cluster {name} ...")
    cluster = sim.up(name, nodes=max(sizes))
    try:
        folder = Path(home)
        data = folder / "stand-in.mindrecord"  # the stand-in ranks read nothing; the plan must name a dataset
        data.write_bytes(b"\0" * 1024)
        Path(f"{data}.db").write_bytes(b"\0" * 1024)
        sets = [f"job.train_dataset={data}"]
        program = rank_program()
        warm = fake(make_plan(inventory_of(cluster, max(sizes), folder), "pretrain", sets), program)
        done = launch(warm, inventory_of(cluster, max(sizes), folder))  # ships agent + code once
        stop_job(done.job, grace=1)
        for n in sizes:
            inv = inventory_of(cluster, n, folder)
            plan = fake(make_plan(inv, "pretrain", sets), program)
            report.add(interleave(cases(cluster, inv, plan, n), args.repeats), BASELINE)
            log(f"  {n:2d} nodes done")
    finally:
        sim.down(name)
    first, last = f"{sizes[0]} nodes: launch", f"{sizes[-1]} nodes: launch"
    rows = {(r["group"], r["case"]): r["median_s"] for r in report.rows()}
    if len(sizes) > 1:
        growth = ", ".join(
            f"{case} x{rows[(last, case)] / rows[(first, case)]:.2f}" for case in (OURS, BASELINE, "pdsh")
        )
        report.notes.append(f"growth {sizes[0]} -> {sizes[-1]} nodes: {growth}")
    report.emit(args.json)


if __name__ == "__main__":
    main()
