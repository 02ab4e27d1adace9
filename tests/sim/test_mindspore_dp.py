"""One MindSpore CPU data-parallel job across two simulated nodes, started over SSH (needs root).

Dynamic cluster: a scheduler (MS_ROLE=MS_SCHED) on node1 and one worker per node (MS_ROLE=MS_WORKER,
MS_NODE_ID = rank); the workers see different data, average gradients ("mccl" on CPU), and must end
with identical weights that moved away from the initial ones.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.fixtures.sim import ssh_client

pytestmark = [pytest.mark.cluster, pytest.mark.mindspore]
SCRIPT = Path(__file__).with_name("dp_script.py")
PORT = 8118  # inside the nodes' own network namespaces: no clash with other sessions


def test_data_parallel_job_across_two_nodes(sim_cluster):
    n1, n2 = sim_cluster.nodes
    python = yaml.safe_load(sim_cluster.inventory.read_text())["cluster"]["python"]
    out_dir = "/opt/orchestrate-node/dp-test"
    owner = (n1.workdir.stat().st_uid, n1.workdir.stat().st_gid)
    for node in (n1, n2):  # shipped, as the orchestrator ships code: the node cannot read our checkout
        shutil.copyfile(SCRIPT, node.workdir / SCRIPT.name)
        os.chown(node.workdir / SCRIPT.name, *owner)
    script = f"/opt/orchestrate-node/{SCRIPT.name}"
    env = {
        "MS_SCHED_HOST": n1.host,
        "MS_SCHED_PORT": str(PORT),
        "MS_WORKER_NUM": "2",
        "MS_TOPO_TIMEOUT": "90",
    }
    roles = [(n1, {"MS_ROLE": "MS_SCHED"}), (n1, {"MS_ROLE": "MS_WORKER", "MS_NODE_ID": "0"})]
    roles.append((n2, {"MS_ROLE": "MS_WORKER", "MS_NODE_ID": "1"}))
    clients, channels = [], []
    for node, extra in roles:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in {**env, **extra}.items())
        cmd = f"cd /opt/orchestrate-node && {exports} exec {python} {script} {out_dir} 2>&1"
        clients.append(ssh_client(sim_cluster, node))
        _, stdout, _ = clients[-1].exec_command(cmd, timeout=180)
        channels.append(stdout)
    try:
        logs = [ch.read().decode(errors="replace") for ch in channels]
        codes = [ch.channel.recv_exit_status() for ch in channels]
    finally:
        for c in clients:
            c.close()
    assert codes == [0, 0, 0], "\n\n".join(log[-2000:] for log in logs)
    assert "rank 0/2 done" in logs[1] and "rank 1/2 done" in logs[2]
    r0 = np.load(n1.workdir / "dp-test" / "rank0.npz")
    r1 = np.load(n2.workdir / "dp-test" / "rank1.npz")
    assert not (n2.workdir / "dp-test" / "rank0.npz").exists()  # each node wrote into its own folder
    np.testing.assert_array_equal(r0["weight"], r1["weight"])
    np.testing.assert_array_equal(r0["bias"], r1["bias"])
    assert not np.allclose(r0["weight"], r0["init_weight"]) and int(r0["world"]) == 2
