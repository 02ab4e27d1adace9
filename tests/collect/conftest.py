"""Fixtures of the collect tests: a local 'node' (a folder on this machine) holding a failed job."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from orchestrator.inventory import parse_inventory
from orchestrator.inventory.defaults import default_inventory_text
from orchestrator.launch.start import make_record
from orchestrator.plan.planner import make_plan

JOB = "20260101-000000-pretrain-abcd"
LOSS = "- INFO - {{ Epoch:[  1/  1], step:[{s:5d}/   10], loss: {loss:5.6f}, per_step_time: 99ms, lr: 1e-05"
TRACE = ("Traceback (most recent call last):", "RuntimeError: rank 1 broke")


def tree(root: Path) -> dict[str, tuple[int, float]]:
    """Every file under ``root``: (size, mtime) by path."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime) for p in root.rglob("*") if p.is_file()}


def agent_state(launches, now: float) -> dict:
    """state.json as the agent leaves it: rank-1 failed (exit 1), the agent stopped the others (143)."""
    procs = [{"name": "scheduler" if x.rank is None else f"rank-{x.rank}", "rank": x.rank, "log": x.stdout,
              "pid": 100 + i, "started": now - 95, "ended": now - 55, "exit_code": 1 if x.rank == 1 else 143,
              "signal": None if x.rank == 1 else "SIGTERM", "killed_by_agent": x.rank != 1}
             for i, x in enumerate(launches)]  # fmt: skip
    return {"job_id": JOB, "state": "failed", "started": now - 100, "ended": now - 50, "processes": procs}


@pytest.fixture
def node(tmp_path, monkeypatch):
    """(record, node spec, node plan, workdir, plan) of a local 'node' holding a failed job: rank logs with loss
    lines (and an earlier run's log), config, the agent's records, a plog; a stand-in npu-smi."""
    work = tmp_path / "node"
    text = default_inventory_text().replace("~/.orchestrate/local-node", str(work))
    env = f"  env: {{ASCEND_PROCESS_LOG_PATH: {tmp_path}/plogs}}"
    inv = parse_inventory(
        text.replace("  launch_mode: auto", f"  launch_mode: auto\n{env}"), str(tmp_path / "i.yaml")
    )
    plan = make_plan(inv, "pretrain", ["job.train_dataset=/data/x.mindrecord"])
    now = time.time()
    record = make_record(JOB, plan, inv, now - 200)
    pn = plan.nodes[0]

    def put(path: str, text: str, mtime: float = now - 60) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
        os.utime(path, (mtime, mtime))

    for x in pn.launches:
        steps = range(1, 4 if x.rank == 1 else 8) if x.rank is not None else ()
        lines = [LOSS.format(s=s, loss=5.0 / s) for s in steps] + (
            list(TRACE) if x.rank == 1 else ["Terminated"]
        )
        put(x.stdout, "\n".join(lines) + "\n")
    put(pn.launches[1].stdout + ".1000000000", "an earlier job\n", 1e9)
    put(f"{pn.job_dir}/config/pretrain.yaml", pn.yaml_text)
    agent = f"{work}/agent"
    put(f"{agent}/jobs/{JOB}/state.json", json.dumps(agent_state(pn.launches, now)))
    put(f"{agent}/jobs/{JOB}/supervisor.log", "supervisor\n")
    put(f"{agent}/specs/{JOB}.json", "{}")
    put(f"{tmp_path}/plogs/plog/plog-1_2.log", "[ERROR] EI0006\n")
    bin_dir = tmp_path / "bin"  # a stand-in npu-smi; hccn_tool stays missing
    put(f"{bin_dir}/npu-smi", '#!/bin/sh\necho "npu-smi 25.2.0 $*"\n')
    (bin_dir / "npu-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/ascend/log
    return record, inv.nodes[0], pn, work, plan
