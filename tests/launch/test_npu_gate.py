"""A restart starts only once every node reports the job's NPUs free (``launch.restart.devices_free``):
the local node's agent, staged as launch stages it, with the lagging fake npu-smi of tests/agent."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.inventory import parse_inventory
from orchestrator.inventory.defaults import default_inventory_text
from orchestrator.launch import agent_rpc
from orchestrator.launch.nodes import JobNodes
from orchestrator.launch.restart import devices_free
from orchestrator.launch.start import NodeNotFree
from orchestrator.plan.planner import make_plan
from orchestrator.transport import LocalTransport
from tests.agent import fake_npu_smi
from tests.agent.conftest import DUMMY


def _claiming(npu: int, ready: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, str(DUMMY), "--sleep", "60", "--claim-npu", str(npu), "--ready", str(ready)]
    )
    for _ in range(400):
        if ready.exists():
            return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the claiming process never got ready")


def test_restart_waits_until_every_node_reports_its_npus_free(tmp_path: Path, monkeypatch):
    inv = parse_inventory(
        default_inventory_text().replace("~/.orchestrate/local-node", str(tmp_path / "node")), "i.yaml"
    )
    plan = make_plan(
        inv, "finetune", ["job.train_dataset=/d/t.mindrecord", "job.load_checkpoint=/d/base.ckpt"]
    )
    assert plan.nodes[0].devices == (0, 1)
    assert agent_rpc.install_agent(LocalTransport("127.0.0.1"), inv.nodes[0].workdir)
    for key, value in fake_npu_smi.install(tmp_path / "npu", [0, 1], linger_s=1.0).items():
        monkeypatch.setenv(key, value)

    crashed = _claiming(0, tmp_path / "crashed")  # a rank of the failed attempt, gone but still listed
    crashed.kill()
    crashed.wait()
    holder = None
    try:
        with JobNodes(inv.nodes) as nodes:
            waited = devices_free(plan, nodes, wait_s=20)
            assert set(waited) == {"127.0.0.1"} and waited["127.0.0.1"] > 0
            assert devices_free(plan, nodes, wait_s=20) == {"127.0.0.1": 0.0}

            holder = _claiming(1, tmp_path / "holder")  # not ours: no attempt starts on its NPU
            with pytest.raises(
                NodeNotFree, match=rf"127.0.0.1: node busy: NPU 1 is held by pid {holder.pid} \(user"
            ):
                devices_free(plan, nodes, wait_s=20)
            assert holder.poll() is None
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
