"""Fixtures of the launch tests: a private ORCHESTRATE_HOME, the simulated cluster's inventory cut to one
rank per node, a tiny pretraining dataset, and helpers that look for a job's processes inside each
node independently of the agent. ``fake_rank.py`` is the stand-in rank of the benchmark."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import pytest

from orchestrator.agent.node.base import SUPERVISOR_NAME

FAKE_RANK = Path(__file__).with_name("fake_rank.py")
ORCHESTRATE = str(Path(sys.executable).with_name("orchestrate"))


@pytest.fixture(scope="session")
def orch_home(tmp_path_factory) -> Path:
    """ORCHESTRATE_HOME for this session (the CLI subprocesses inherit it)."""
    home = tmp_path_factory.mktemp("orchestrate-home")
    old = os.environ.get("ORCHESTRATE_HOME")
    os.environ["ORCHESTRATE_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("ORCHESTRATE_HOME", None)
    else:
        os.environ["ORCHESTRATE_HOME"] = old


def one_rank_per_node(text: str, **ssh: str) -> str:
    """The sim inventory with one device per node (the first device IP), the tiny model, ssh keys replaced."""
    text = text.replace("\nnodes:", "\njob: {model: tiny}\nnodes:", 1)
    text = re.sub(r"devices: \[(\d+)[^\]]*\]", r"devices: [\1]", text)
    text = re.sub(r'device_ips: \[("[^"]+")[^\]]*\]', r"device_ips: [\1]", text)
    for key, value in ssh.items():
        text = re.sub(rf"{key}: [^,}}]+", f"{key}: {value}", text, count=1)
    return text


@pytest.fixture(scope="session")
def sim_inventory(sim_cluster, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inv") / "sim2.yaml"
    path.write_text(one_rank_per_node(Path(sim_cluster.inventory).read_text()))
    return path


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A pretraining MindRecord for the tiny preset (``orchestrate demo prepare``, ~45 rows: ~22 steps)."""
    return _demo_dataset(tmp_path_factory, 64)


@pytest.fixture(scope="session")
def long_dataset(tmp_path_factory) -> Path:
    """As ``tiny_dataset`` with ~90 steps on two ranks: a job interrupted after a few steps, even on a loaded
    machine where the controller sees progress late, still has steps left to resume."""
    return _demo_dataset(tmp_path_factory, 256)


def _demo_dataset(tmp_path_factory, records: int) -> Path:
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run([ORCHESTRATE, "demo", "prepare", "--out", str(out), "--records", str(records)],
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip().splitlines()[-1])


def placeholder_dataset(folder: Path) -> Path:
    """A file pair a plan accepts as a MindRecord dataset, for stand-in ranks that read nothing."""
    data = folder / "train.mindrecord"
    data.write_bytes(b"\0" * 64)
    Path(f"{data}.db").write_bytes(b"\0" * 64)
    return data


def local_stand_in_plan(folder: Path, data: Path, slots: Optional[list[int]] = None):
    """(plan, inventory) of the embedded default's local node (in ``folder``), its ranks stand-ins
    (fake_rank.py, 600 steps of 0.1 s); ``slots`` replaces the default's devices."""
    from orchestrator.inventory import parse_inventory
    from orchestrator.inventory.defaults import default_inventory_text
    from orchestrator.plan.planner import make_plan

    text = default_inventory_text().replace("~/.orchestrate/local-node", str(folder / "node"))
    if slots is not None:
        text = text.replace("devices: [0, 1]", f"devices: {slots}")
    inv = parse_inventory(text, str(folder / "inv.yaml"))
    plan = make_plan(inv, "pretrain", [f"job.train_dataset={data}"])
    argv = (sys.executable, str(FAKE_RANK), "--steps", "600", "--step-s", "0.1")
    nodes = tuple(
        dataclasses.replace(n, launches=tuple(dataclasses.replace(x, argv=argv) for x in n.launches))
        for n in plan.nodes
    )
    return dataclasses.replace(plan, nodes=nodes), inv


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([ORCHESTRATE, *args], capture_output=True, text=True, timeout=timeout)


def ranks_by_name(st: dict) -> dict[str, dict]:
    """A job status's ranks by ``<host>/<name>``."""
    return {f"{n['host']}/{r['name']}": r for n in st["nodes"] for r in n["ranks"]}


def status_of(job_id: str) -> dict:
    home = Path(os.environ["ORCHESTRATE_HOME"])
    return json.loads((home / "jobs" / job_id / "status.json").read_text())


def latest_job() -> str:
    home = Path(os.environ["ORCHESTRATE_HOME"]) / "jobs"
    return sorted(p.name for p in home.iterdir() if (p / "job.json").exists())[-1]


def wait_for(check: Callable[[], object], timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def wait_state(job_id: str, states: tuple[str, ...], timeout: float = 240) -> dict:
    def reached() -> Optional[dict]:
        st = status_of(job_id)
        return st if st["state"] in states else None

    return wait_for(reached, timeout, f"job {job_id} in {states}")


def node_job_pids(cluster, node, job_id: str) -> list[int]:
    """Pids (in the node) of live processes carrying the job's id, read from /proc inside the node."""
    script = ("for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f 2>/dev/null | grep -qx "
              f"'ORCHESTRATE_JOB_ID={job_id}' && echo ${{f#/proc/}}; done | cut -d/ -f1; "
              # the supervisor is the start call forked: named SUPERVISOR_NAME, working in the job's folder
              f"for d in /proc/[0-9]*; do read c 2>/dev/null < $d/comm && [ \"$c\" = {SUPERVISOR_NAME} ] && "
              f"case \"$(readlink $d/cwd)\" in */jobs/{job_id}) echo ${{d#/proc/}};; esac; done")  # fmt: skip
    out = cluster.exec(node.hostname, script).stdout.split()
    alive = []
    for pid in out:
        stat = cluster.exec(node.hostname, f"cat /proc/{pid}/stat 2>/dev/null").stdout
        if stat and stat.rsplit(")", 1)[1].split()[0] != "Z":
            alive.append(int(pid))
    return alive


def assert_nothing_left(cluster, job_id: str, timeout: float = 15) -> None:
    for node in cluster.nodes:
        wait_for(
            lambda n=node: not node_job_pids(cluster, n, job_id),
            timeout,
            f"no process of {job_id} on {node.hostname}",
        )
