"""Launch, status, fail-fast and watching cost on 2, 16 and 64 simulated nodes (one device each), against
a sequential ``ssh`` loop and ``pdsh``.

One simulated cluster of the largest size (real sshd); each size uses its first N nodes, one rank per node,
plus the dynamic-cluster scheduler, all running a stand-in rank program (tests/launch/fake_rank.py).
- launch: ``launch()`` from the call to every rank running (preflight, staging incl. the agent and the
  model code, start through the agents), and its stage + start phase alone (the inputs' push, then each
  agent's ``stage``, which also starts the job); code is already cached on the nodes (a first warm-up
  launch ships it), as for any launch after the first. Baselines: the same processes started detached with the same environment by one ``ssh`` per node in a loop (the named baseline), and
  by ``pdsh -R ssh`` (fan-out 32);
- status round trip: ``status`` asked on every node's kept-open watch channel at once (the watcher's
  ``refresh``), against the ``ssh loop`` running the agent's one-shot ``status`` node after node;
- extra (at ``--fault-nodes``, default 16): first bad exit (a rank killed with SIGKILL) -> every rank on
  every node stopped, from the kill to the last rank's recorded end (median of ``--kills``); a cut link
  -> the job failed and the rest stopped, with the record's failure detection set to ``--detect-s``;
- extra (at the largest size): while the watcher watches a running job for ``--cpu-window`` seconds,
  each node's CPU (from /proc: its ``watch`` process, the SSH session carrying it, the job's node-side
  supervisor) and the controller's CPU and memory per node;
- extra ``cpu_per_launch``: per size and tool, the CPU seconds one launch cost the whole machine and the
  controller (this process and its children); the difference per node is the nodes' side, which the
  simulated nodes spend on this machine's shared cores and real nodes spend in parallel.
Needs root. Run: ``.venv/bin/python bench/bench_launch.py [--repeats 3] [--nodes 2,16,64] [--json]``.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness import Measured, Report, Seconds, arguments, interleave, log  # noqa: E402

from orchestrator import sim  # noqa: E402
from orchestrator.agent.node.base import SUPERVISOR_NAME  # noqa: E402
from orchestrator.inventory import load_inventory  # noqa: E402
from orchestrator.jobs.state import JobDir  # noqa: E402
from orchestrator.launch import agent_rpc  # noqa: E402
from orchestrator.launch.start import launch  # noqa: E402
from orchestrator.launch.stop import stop_job  # noqa: E402
from orchestrator.launch.watcher import Watcher  # noqa: E402
from orchestrator.plan.planner import make_plan  # noqa: E402
from tests.launch.conftest import FAKE_RANK, one_rank_per_node, placeholder_dataset  # noqa: E402

SIZES = (2, 16, 64)
BASELINE, OURS = "ssh loop", "orchestrate"


def rank_program() -> str:
    """The stand-in rank, copied where every simulated node can read it (/tmp is shared; the checkout is not)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-launch-", dir="/tmp"))
    folder.chmod(0o755)
    copy = folder / FAKE_RANK.name
    shutil.copyfile(FAKE_RANK, copy)
    copy.chmod(0o644)
    return str(copy)


def stand_in_sets(folder: Path) -> list[str]:
    """Plan settings naming a dataset: the stand-in ranks read nothing, but a plan must name one."""
    return [f"job.train_dataset={placeholder_dataset(folder)}"]


def fake(plan, program: str, steps: int = 100):
    """``plan`` with every process running the stand-in rank (``steps`` of 0.2 s) under its node's Python."""

    def one(n, x):
        argv = (n.python, program, "--steps", str(steps), "--step-s", "0.2", "--out", f"{x.cwd}/out")
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


def watching(job: JobDir, poll_s: float = 1.0) -> tuple[Watcher, threading.Thread, dict]:
    """A watcher running ``job`` in a thread, once every node's channel is connected."""
    watcher, out = Watcher(job, poll_s=poll_s), {}
    thread = threading.Thread(target=lambda: out.update(status=watcher.run()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not (watcher.channels and all(c.connected for c in watcher.channels.values())):
        if time.monotonic() > deadline:
            raise RuntimeError("the watch channels did not connect within 120 s")
        time.sleep(0.05)
    return watcher, thread, out


def machine_cpu_s() -> float:
    """CPU seconds this machine spent (every process, every core: user, nice, system, irq) since boot."""
    user, nice, system, _idle, _iowait, irq, softirq = map(int, Path("/proc/stat").read_text().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def controller_cpu_s() -> float:
    """CPU seconds of this process and its waited-for children (pdsh's ssh clients, our OpenSSH streams)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class CpuLedger:
    """Per (nodes, tool): the machine's and the controller's CPU seconds of each launch. On the simulated
    cluster every node shares this machine's cores, so machine - controller is the nodes' side (sshd, the
    agent, the ranks' start), which a real cluster spends in parallel on its own nodes."""

    def __init__(self) -> None:
        self.samples: dict[tuple[int, str], list[tuple[float, float]]] = {}

    def measure(self, n: int, tool: str, call):
        m0, c0 = machine_cpu_s(), controller_cpu_s()
        out = call()
        self.samples.setdefault((n, tool), []).append((machine_cpu_s() - m0, controller_cpu_s() - c0))
        return out

    def summary(self) -> dict:
        out: dict = {}
        for (n, tool), rows in sorted(self.samples.items()):
            machine = statistics.median(r[0] for r in rows)
            controller = statistics.median(r[1] for r in rows)
            out.setdefault(f"{n} nodes", {})[tool] = {
                "machine_cpu_s": round(machine, 3), "controller_cpu_s": round(controller, 3),
                "controller_ms_per_node": round(1000 * controller / n, 1),
                "node_side_ms_per_node": round(1000 * (machine - controller) / n, 1)}  # fmt: skip
        return out


LEDGER = CpuLedger()


def cases(cluster, inv, plan, n: int) -> list:
    """The three ways to start the job on ``n`` nodes, each ending with nothing left running."""
    launch_group, status_group = f"{n} nodes: launch", f"{n} nodes: status round trip"

    def ours() -> Measured:
        t0 = time.perf_counter()
        done = LEDGER.measure(n, OURS, lambda: launch(plan, inv))
        took = time.perf_counter() - t0
        watcher = Watcher(done.job).open()
        while not all(c.connected for c in watcher.channels.values()):
            time.sleep(0.05)
        watcher.refresh(timeout=30)  # warm
        t1 = time.perf_counter()
        watcher.refresh(timeout=30)
        status_ours = time.perf_counter() - t1
        watcher.close()
        status_seq = status_loop(cluster, inv, done.job.job_id)
        stop_job(JobDir(done.job.job_id), grace=1)
        return Measured({(launch_group, OURS): took, (launch_group, f"{OURS} (stage + start phase)"): done.stage_s + done.start_s,
                         (status_group, f"{OURS} (watch channels)"): status_ours,
                         (status_group, BASELINE): status_seq})  # fmt: skip

    def baseline(start, tool: str) -> Seconds:
        took, pids = LEDGER.measure(n, tool, lambda: start(cluster, plan))
        kill_baselines(cluster, pids)
        return Seconds(took)

    return [((launch_group, OURS), ours), ((launch_group, BASELINE), lambda: baseline(ssh_loop, BASELINE)),
            ((launch_group, "pdsh"), lambda: baseline(pdsh, "pdsh"))]  # fmt: skip


def kill_to_stopped(cluster, inv, plan) -> float:
    """Seconds from SIGKILL of the last node's rank to the end of the last rank of the job, anywhere."""
    done = launch(plan, inv)
    watcher, thread, out = watching(done.job)
    try:
        host = plan.nodes[-1].host
        while True:  # the victim's pid, as its node reported it
            ranks = [r for r in watcher.latest[host].ranks if r.rank is not None and r.state == "running"]
            if ranks:
                break
            time.sleep(0.05)
        node = next(x for x in cluster.nodes if x.host == host)
        t0 = time.time()
        cluster.exec(node.hostname, ["kill", "-9", str(ranks[0].pid)])
        thread.join(120)
        ends = [r.ended for r in out["status"].ranks]
        if None in ends:
            raise RuntimeError(f"some rank did not end: {out['status'].ranks}")
        return max(ends) - t0
    finally:
        watcher.close()
        stop_job(JobDir(done.job.job_id), grace=1)


def cut_link_to_failed(cluster, inv, plan, detect_s: float) -> tuple[float, float]:
    """(seconds from a cut link to the job failed and the rest stopped, the detection time it had)."""
    from orchestrator.sim import faults

    done = launch(plan, inv)
    done.job.save_record(dataclasses.replace(done.job.record(), failure_detect_s=detect_s))
    watcher, thread, out = watching(done.job)
    node = next(x for x in cluster.nodes if x.host == plan.nodes[-1].host)
    faults.link_down(cluster.name, node.hostname)
    try:
        t0 = time.time()
        thread.join(detect_s + 120)
        took = time.time() - t0
        if out.get("status") is None or out["status"].state.value != "failed":
            raise RuntimeError(f"the job did not fail: {out.get('status')}")
        return took, detect_s
    finally:
        faults.link_up(cluster.name, node.hostname)
        watcher.close()
        stop_job(JobDir(done.job.job_id), grace=1)


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _is_supervisor(pid: str, job_id: str) -> bool:
    """The agent's supervisor of ``job_id``: named SUPERVISOR_NAME, running in the job's folder."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        return comm == SUPERVISOR_NAME and Path(os.readlink(f"/proc/{pid}/cwd")).name == job_id
    except OSError:
        return False


def _node_side(job_id: str) -> dict[str, list[int]]:
    """Host pids of the job's node-side ``watch`` processes, their SSH sessions and supervisors."""
    found: dict[str, list[int]] = {"watch": [], "ssh session": [], "supervisor": []}
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
            ppid = int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if job_id.encode() in cmd and b"watch" in cmd:
            found["watch"].append(int(p))
            if Path(f"/proc/{ppid}/comm").read_text().startswith("sshd"):
                found["ssh session"].append(ppid)
        elif _is_supervisor(p, job_id):
            found["supervisor"].append(int(p))
    return found


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def watch_cost(inv, plan, window: float) -> dict:
    """CPU (% of one core) per node of what watches a running job, and the controller's CPU and memory."""
    rss0 = _rss_bytes()
    done = launch(plan, inv)
    watcher, thread, _ = watching(done.job)
    try:
        time.sleep(2.0)  # the connect's snapshot and replay are over
        pids = _node_side(done.job.job_id)
        hz, n = os.sysconf("SC_CLK_TCK"), len(plan.nodes)
        before = {k: {p: _ticks(p) for p in v} for k, v in pids.items()}
        cpu0, t0 = time.process_time(), time.monotonic()
        time.sleep(window)
        took, cpu1 = time.monotonic() - t0, time.process_time()
        rss1 = _rss_bytes()
        gone = [p for v in pids.values() for p in v if not Path(f"/proc/{p}").exists()]
        if gone:
            raise RuntimeError(f"node-side processes ended during the window (the job ended?): {gone}")
        per_node = {k: round(100 * sum(_ticks(p) - t for p, t in v.items()) / hz / took / n, 3)
                    for k, v in before.items()}  # fmt: skip
        return {"nodes": n, "window_s": round(took, 1), "found": {k: len(v) for k, v in pids.items()},
                "agent_cpu_percent_per_node": per_node,
                "controller_cpu_percent_per_node": round(100 * (cpu1 - cpu0) / took / n, 3),
                "controller_rss_bytes_per_node": int((rss1 - rss0) / n)}  # fmt: skip
    finally:
        watcher.close()
        thread.join(30)
        stop_job(JobDir(done.job.job_id), grace=1)


def options(argv=None):
    parser = arguments(__doc__, repeats=3)
    parser.add_argument("--nodes", default=",".join(map(str, SIZES)), help="node counts, e.g. 2,16,64")
    parser.add_argument(
        "--fault-nodes", type=int, default=16, help="cluster size of the fault figures (0: none)"
    )
    parser.add_argument("--kills", type=int, default=5, help="killed ranks measured (median reported)")
    parser.add_argument("--bastion", action="store_true",
                        help="also launch on a same-size cluster behind a bastion (case 'orchestrate via bastion')")  # fmt: skip
    parser.add_argument("--detect-s", type=float, default=5.0, help="failure detection for the cut link")
    parser.add_argument(
        "--cpu-window", type=float, default=60.0, help="seconds the watching cost is measured over"
    )
    return parser.parse_args(argv)


def fault_figures(report, cluster, folder: Path, sets, program: str, n: int, args) -> None:
    inv = inventory_of(cluster, n, folder)
    plan = fake(make_plan(inv, "pretrain", sets), program)
    kills = [kill_to_stopped(cluster, inv, plan) for _ in range(args.kills)]
    report.extra[f"kill_to_all_stopped_s_{n}_nodes"] = {"median": round(statistics.median(kills), 3),
                                                        "samples": [round(k, 3) for k in kills]}  # fmt: skip
    took, detect = cut_link_to_failed(cluster, inv, plan, args.detect_s)
    report.extra[f"cut_link_to_failed_s_{n}_nodes"] = {"seconds": round(took, 3), "failure_detect_s": detect}
    log(
        f"  faults at {n} nodes: kill -> stopped {statistics.median(kills):.3f} s, cut link -> failed {took:.1f} s"
    )


VIA = f"{OURS} via bastion"


def bastion_cases(behind, folder: Path, sets, program: str, largest: int):
    """``--bastion``: ``cases_at(n)``, our launch on the first ``n`` nodes of ``behind`` (nodes reachable
    only through its bastion: every SSH connection, the bulk ones too, goes through the jump host). The
    agent and code are shipped there once first, as for the direct cluster."""
    sub = folder / "bastion"
    sub.mkdir(exist_ok=True)
    stop_job(launch(fake(make_plan(inventory_of(behind, largest, sub), "pretrain", sets), program),
                    inventory_of(behind, largest, sub)).job, grace=1)  # fmt: skip

    def cases_at(n: int) -> list:
        inv = inventory_of(behind, n, sub)
        plan = fake(make_plan(inv, "pretrain", sets), program)

        def via() -> Seconds:
            t0 = time.perf_counter()
            done = launch(plan, inv)
            took = time.perf_counter() - t0
            stop_job(JobDir(done.job.job_id), grace=1)
            return Seconds(took)

        return [((f"{n} nodes: launch", VIA), via)]

    return cases_at


def main(argv=None) -> None:
    args = options(argv)
    sizes = sorted(int(n) for n in args.nodes.split(","))
    report = Report("bench_launch", f"{BASELINE} (one ssh per node, in turn)", args.repeats, "speedup",
                    dict(ranks_per_node=1, devices_per_node=1, scheduler=True, pdsh_fanout=32))  # fmt: skip
    if os.geteuid() != 0:
        report.skip("the simulated cluster needs root")
        report.emit(args.json)
        return
    name = f"bl{os.getpid() % 10000}"
    home = tempfile.mkdtemp(prefix="bench-launch-")
    os.environ["ORCHESTRATE_HOME"] = home
    log(f"building a {max(sizes)}-node simulated cluster {name} ...")
    cluster = sim.up(name, nodes=max(sizes))
    behind = sim.up(f"{name}b", nodes=max(sizes), bastion=True) if args.bastion else None
    try:
        folder = Path(home)
        sets = stand_in_sets(folder)
        program = rank_program()
        warm = fake(make_plan(inventory_of(cluster, max(sizes), folder), "pretrain", sets), program)
        done = launch(warm, inventory_of(cluster, max(sizes), folder))  # ships agent + code once
        stop_job(done.job, grace=1)
        via = bastion_cases(behind, folder, sets, program, max(sizes)) if behind else None
        for n in sizes:
            inv = inventory_of(cluster, n, folder)
            plan = fake(make_plan(inv, "pretrain", sets), program)
            report.add(
                interleave(cases(cluster, inv, plan, n) + (via(n) if via else []), args.repeats), BASELINE
            )
            log(f"  {n:2d} nodes done")
        report.extra["cpu_per_launch"] = LEDGER.summary()
        if args.fault_nodes and args.fault_nodes <= max(sizes):
            fault_figures(report, cluster, folder, sets, program, args.fault_nodes, args)
        if args.cpu_window > 0:
            inv = inventory_of(cluster, max(sizes), folder)
            steps = int((args.cpu_window + 60) / 0.2)  # the job outlives the window
            plan = fake(make_plan(inv, "pretrain", sets), program, steps)
            report.extra["watching"] = watch_cost(inv, plan, args.cpu_window)
    finally:
        sim.down(name)
        if behind is not None:
            sim.down(behind.name)
    rows = {(r["group"], r["case"]): r["median_s"] for r in report.rows()}
    for n in sizes:
        g = f"{n} nodes: launch"
        report.notes.append(f"{n} nodes: launch / pdsh x{rows[(g, OURS)] / rows[(g, 'pdsh')]:.2f}")
        if args.bastion:
            report.notes.append(
                f"{n} nodes: launch via bastion / direct x{rows[(g, VIA)] / rows[(g, OURS)]:.2f}"
            )
    first, last = f"{sizes[0]} nodes: launch", f"{sizes[-1]} nodes: launch"
    if len(sizes) > 1:
        growth = ", ".join(
            f"{case} x{rows[(last, case)] / rows[(first, case)]:.2f}" for case in (OURS, BASELINE, "pdsh")
        )
        report.notes.append(f"growth {sizes[0]} -> {sizes[-1]} nodes: {growth}")
    report.emit(args.json)


if __name__ == "__main__":
    main()
