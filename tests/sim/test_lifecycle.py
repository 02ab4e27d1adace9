"""Clusters coexist, and `down` leaves nothing, also after a controller crash (needs root)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from orchestrator import sim
from orchestrator.cli.main import main
from orchestrator.sim import netns, state
from tests.fixtures.sim import sim_name, ssh_client

pytestmark = pytest.mark.cluster


def _variant_hardware(tmp_path: Path) -> Path:
    """4 NPUs; NPU 1 has a broken NIC; NPU 3 reuses a device IP of the session cluster's node1."""
    npus = [{"id": i, "ip": f"192.168.120.{10 + i}"} for i in range(4)]
    npus[1].update(link="DOWN", net_health="Fault")
    npus[3]["ip"] = "192.168.101.10"
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump({"nodes": [{"npus": npus}]}))
    return path


def test_two_clusters_coexist_and_down_leaves_nothing(sim_cluster, tmp_path, capsys):
    name = sim_name("b")
    args = ["sim", "up", "--nodes", "1", "--name", name, "--hardware", str(_variant_hardware(tmp_path))]
    assert main(args) == 0
    assert "inventory:" in capsys.readouterr().out
    try:
        other = sim.open_cluster(name)
        assert other.subnet != sim_cluster.subnet
        client = ssh_client(other, other.nodes[0])
        _, out, _ = client.exec_command(
            "npu-smi info -l; T=/usr/local/Ascend/driver/tools/hccn_tool; $T -i 1 -link -g; $T -i 1 -net_health -g"
        )
        text = out.read().decode()
        client.close()
        assert "Total Count                    : 4" in text
        assert "link status: DOWN" in text and "net health status: Fault" in text
        assert ssh_client(sim_cluster, sim_cluster.nodes[0]).get_transport().is_active()
        assert main(["sim", "status", "--json"]) == 0
        names = {c["name"] for c in json.loads(capsys.readouterr().out)}
        assert {name, sim_cluster.name} <= names
    finally:
        assert main(["sim", "down", "--name", name]) == 0
    assert sim.leftovers(name) == []
    assert not any(x.startswith(f"osv{state.name_hash(name)}") for x in netns.link_names())
    assert sim_cluster.exec(1, "hostname").returncode == 0  # the session cluster is untouched


def test_down_after_controller_killed_mid_up(tmp_path):
    name = sim_name("c")
    argv = [sys.executable, "-m", "orchestrator.cli.main", "sim", "up", "--nodes", "6", "--name", name]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = Path("/run/netns") / state.netns_name(name, 1)
    deadline = time.monotonic() + 60
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    try:
        assert sim.leftovers(name), "the crash left nothing to clean: the test did not interrupt `up`"
        st = state.ClusterState.load(name)
        assert st is not None and st.status == "creating"
        again = sim.up(name, nodes=1)  # up after an unclean exit replaces the leftovers
        assert [n.hostname for n in again.nodes] == [f"{name}-node1"]
        assert sim.leftovers(name) != [] and len(netns.netns_list()) >= 1
    finally:
        sim.down(name)
    assert sim.leftovers(name) == []
    assert not [n for n in netns.netns_list() if n.startswith(f"osim-{name}.")]


def test_down_by_prefix_without_state(tmp_path):
    name = sim_name("d")
    cluster = sim.up(name, nodes=2, devices=2)
    pids = [p for n in cluster.nodes for p in netns.netns_pids(n.netns)]
    assert pids
    shutil.rmtree(cluster.dir)  # the controller lost its records
    assert state.ClusterState.load(name) is None and sim.leftovers(name)
    assert name in sim.all_names()
    sim.down(name)
    assert sim.leftovers(name) == [] and netns.wait_gone(pids, 1.0) == []
