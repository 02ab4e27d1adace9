"""collect-logs after a failed job on the simulated cluster (real sshd, real node agent, real launch).

2 nodes x 1 rank (+ the dynamic-cluster scheduler) run a stand-in rank program that prints loss lines
and writes a CANN-style plog; rank 1 raises at step 4. The monitor fails the job fast; then
``orchestrate collect-logs`` must bring every node's files, name rank 1 as the cause, draw the loss
curve, skip an earlier run's log, and leave every file on the nodes as it was.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.inventory import load_inventory
from orchestrator.launch.start import launch
from orchestrator.launch.watcher import Watcher
from orchestrator.plan.planner import make_plan
from orchestrator.sim.state import WORKDIR
from tests.launch.conftest import one_rank_per_node

pytestmark = pytest.mark.cluster

FAILING_RANK = Path(__file__).with_name("failing_rank.py")
ORCHESTRATE = str(Path(sys.executable).with_name("orchestrate"))
PLOG = f"{WORKDIR}/plog"


def on_host(node, path: str) -> Path:
    """A node path under the node's work folder, as seen from the host."""
    return node.workdir / Path(path).relative_to(WORKDIR)


def as_job_user(node, path: Path) -> None:
    """Give the job user what root made in the node's work folder (the user owns that folder)."""
    owner = node.workdir.stat().st_uid, node.workdir.stat().st_gid
    for p in [path, *path.parents]:
        if p == node.workdir or node.workdir not in p.parents:
            break
        os.chown(p, *owner)


def ship(nodes, script: Path) -> str:
    """Copy ``script`` into each node's work folder (a node cannot read this checkout); its node path."""
    for node in nodes:
        shutil.copyfile(script, node.workdir / script.name)
        as_job_user(node, node.workdir / script.name)
    return f"{WORKDIR}/{script.name}"


def files_of(root: Path) -> dict[str, tuple[int, float]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def failed_job(sim_cluster, tmp_path_factory):
    """(job id, plan, ORCHESTRATE_HOME) of a job that failed on the simulated cluster."""
    folder = tmp_path_factory.mktemp("collect")
    old_home = os.environ.get("ORCHESTRATE_HOME")
    os.environ["ORCHESTRATE_HOME"] = str(folder / "home")
    text = one_rank_per_node(Path(sim_cluster.inventory).read_text())
    (folder / "inv.yaml").write_text(text.replace("  env: {}", f"  env: {{ASCEND_PROCESS_LOG_PATH: {PLOG}}}"))
    inv = load_inventory(folder / "inv.yaml")
    data = folder / "stand-in.mindrecord"
    data.write_bytes(b"\0" * 64)
    Path(f"{data}.db").write_bytes(b"\0" * 64)  # the stand-in ranks read nothing; the plan needs a dataset
    plan = make_plan(inv, "pretrain", [f"job.train_dataset={data}"])
    argv = (plan.nodes[0].python, ship(sim_cluster.nodes, FAILING_RANK), "--fail-rank", "1", "--fail-at", "4")
    plan = dataclasses.replace(plan, nodes=tuple(
        dataclasses.replace(n, launches=tuple(dataclasses.replace(x, argv=argv) for x in n.launches))
        for n in plan.nodes))  # fmt: skip
    try:
        done = launch(plan, inv)
        # a file older than the job in its log folder (each job logs in its own run folder)
        old = on_host(sim_cluster.nodes[0], done.job.plan().nodes[0].launches[-1].stdout + ".1000000000")
        old.write_text("an earlier job's log\n")
        os.utime(old, (1e9, 1e9))
        as_job_user(sim_cluster.nodes[0], old)
        status = Watcher(done.job, poll_s=0.3).run()
        assert status is not None and status.state.value == "failed", status
        yield done.job.job_id, done.job.plan(), old  # the plan the nodes ran (bound to the job)
    finally:
        if old_home is None:
            os.environ.pop("ORCHESTRATE_HOME", None)
        else:
            os.environ["ORCHESTRATE_HOME"] = old_home


def test_collect_logs_after_a_failed_job(sim_cluster, failed_job, tmp_path):
    job, plan, old = failed_job
    before = {n.host: files_of(n.workdir) for n in sim_cluster.nodes}
    res = subprocess.run([ORCHESTRATE, "collect-logs", job[-4:], "--out", str(tmp_path), "--json"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    ix = json.loads(res.stdout)
    root = tmp_path / job
    for node in sim_cluster.nodes:  # nothing on the nodes was deleted or changed
        after = files_of(node.workdir)
        assert {p: after.get(p) for p in before[node.host]} == before[node.host], node.hostname
    assert old.read_text() == "an earlier job's log\n"

    cause = ix["root_cause"]
    node1, node2 = sim_cluster.nodes
    assert (cause["host"], cause["rank"], cause["exit_code"]) == (node2.host, 1, 3), cause
    assert "RuntimeError: rank 1 ran out of device memory at step 4" in cause["error_lines"]
    assert cause["log"] == f"{node2.host}/logs/rank_1/stdout.log"
    codes = {(r["host"], r["name"]): r["exit_code"] for r in ix["ranks"]}
    assert codes[(node2.host, "rank-1")] == 3 and codes[(node1.host, "rank-0")] == 143
    assert f"**rank-1 on {node2.host}**" in (root / "INDEX.md").read_text()

    for rank, (node, pn) in enumerate(zip(sim_cluster.nodes, plan.nodes)):
        here = root / node.host
        log = (here / f"logs/rank_{rank}/stdout.log").read_text()
        assert "step:[    3/  600], loss:" in log
        assert json.loads((here / "agent/state.json").read_text())["job_id"] == job
        assert list((here / "plog/0/plog").glob("plog-*.log")), f"no plog from {node.hostname}"
        assert (here / "config/pretrain.yaml").read_text() == pn.yaml_text
        assert (here / f"plan/env_rank_{rank}.sh").is_file()
        assert "NPU" in (here / "snapshots/npu-smi-info.txt").read_text()
        assert (
            "link status" in (here / f"snapshots/hccn_tool-i-{pn.devices[0]}-link-g.txt").read_text().lower()
        )
    assert (root / node1.host / "logs/scheduler/stdout.log").exists()
    assert not list((root / node1.host / "logs").rglob("*.1000000000"))
    first = next(n for n in ix["nodes"] if n["host"] == node1.host)
    # the planted log of an earlier run, and any other job's left by earlier tests on this shared cluster
    skipped = [
        int(m.group(1))
        for n in first["notes"]
        if (m := re.fullmatch(r"(\d+) file\(s\) of earlier runs skipped", n))
    ]
    assert skipped and skipped[0] >= 1 and "NPU(s), all OK" in first["npus"]

    png = (root / "loss.png").read_bytes()
    assert ix["loss_plot"] == "loss.png" and png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert (root / "controller/status.json").exists() and (root / "plan/plan.json").exists()
