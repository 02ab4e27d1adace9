"""The example inventories, the embedded local default, determinism, and the simulated cluster's shape."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from pathlib import Path

import pytest

from orchestrator.inventory import default_inventory, load_inventory, parse_inventory
from orchestrator.inventory import validate as schema
from orchestrator.inventory.defaults import DEFAULT_SOURCE, default_inventory_text
from tests.inventory.util import parse

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "inventories").glob("*.yaml"))


def test_the_three_examples_exist():
    names = {p.name for p in EXAMPLES}
    assert {"atlas-800t-a2-1node.yaml", "atlas-800-2nodes.yaml", "local-cpu.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads(path):
    inv = load_inventory(path)
    assert inv.source == str(path) and (inv.nodes or inv.cluster.scheduler == "slurm")
    assert all(len(n.device_ips) in (0, n.device_count) for n in inv.nodes)


def test_examples_have_what_their_names_say():
    a2 = load_inventory(REPO / "inventories/atlas-800t-a2-1node.yaml")
    assert (a2.profile.name, len(a2.nodes), a2.world_size) == ("atlas-800t-a2-64g", 1, 8)
    pair = load_inventory(REPO / "inventories/atlas-800-2nodes.yaml")
    assert (pair.profile.name, len(pair.nodes), pair.world_size) == ("atlas-800-32g", 2, 16)
    assert [n.ssh.port for n in pair.nodes] == [22, 2222]
    assert pair.cluster.effective_launch_mode == "rank_table"


def test_embedded_default_is_the_local_cpu_example():
    assert default_inventory_text() == (REPO / "inventories/local-cpu.yaml").read_text()
    inv = default_inventory()
    assert inv == dataclasses.replace(
        load_inventory(REPO / "inventories/local-cpu.yaml"), source=DEFAULT_SOURCE
    )


def test_embedded_default_is_this_machine():
    inv = default_inventory()
    (node,) = inv.nodes
    assert node.local and node.devices == (0, 1) and inv.profile.name == "cpu"
    assert node.workdir == os.path.join(os.path.expanduser("~"), ".orchestrate", "local-node")
    assert node.python == sys.executable
    assert inv.cluster.effective_launch_mode == "dynamic_cluster" and inv.job.model == "tiny"


def test_same_text_gives_equal_objects_and_device_order_does_not_matter():
    text = (REPO / "inventories/atlas-800-2nodes.yaml").read_text()
    first, second = parse_inventory(text, "x"), parse_inventory(text, "x")
    assert first == second and hash(first) == hash(second)
    shuffled = text.replace("devices: [0, 1, 2, 3, 4, 5, 6, 7]", "devices: [7, 6, 5, 4, 3, 2, 1, 0]")
    assert shuffled != text
    reordered = parse_inventory(shuffled, "x").nodes[0]
    assert reordered.devices == tuple(range(8))
    assert reordered.device_ips == tuple(reversed(first.nodes[0].device_ips))


SIM = """\
cluster:
  name: simtest
  profile: cpu
  ssh: {user: root, port: 22, key: /run/orchestrate-sim/simtest/id_ed25519,
        known_hosts: /run/orchestrate-sim/simtest/known_hosts}
  workdir: /data/orchestrate
  python: /work/main/.venv/bin/python
  env: {}
  simulated_hardware: /run/orchestrate-sim/simtest/hardware.yaml
nodes:
- host: 10.201.0.2
  name: sim-node1
  devices: [0, 1, 2, 3, 4, 5, 6, 7]
  device_ips: [192.168.101.10, 192.168.101.11, 192.168.101.12, 192.168.101.13, 192.168.101.14,
    192.168.101.15, 192.168.101.16, 192.168.101.17]
- host: 10.201.0.3
  name: sim-node2
  devices: [0, 1, 2, 3, 4, 5, 6, 7]
  device_ips: [192.168.102.10, 192.168.102.11, 192.168.102.12, 192.168.102.13, 192.168.102.14,
    192.168.102.15, 192.168.102.16, 192.168.102.17]
"""


def test_the_simulated_clusters_inventory_shape_loads():
    inv = parse(SIM)
    assert [n.name for n in inv.nodes] == ["sim-node1", "sim-node2"]
    assert inv.world_size == 16 and inv.cluster.simulated_hardware.endswith("hardware.yaml")
    assert inv.nodes[1].ssh.known_hosts == "/run/orchestrate-sim/simtest/known_hosts"
    assert not any(n.local for n in inv.nodes)


def test_every_key_is_documented():
    readme = (REPO / "inventories/README.md").read_text()
    doc = schema.__doc__
    keys = set(schema.ROOT_KEYS + schema.CLUSTER_KEYS + schema.SSH_KEYS + schema.JOB_KEYS + schema.NODE_KEYS)
    for key in sorted(keys):
        assert re.search(rf"\b{key}:", readme), key
        assert re.search(rf"\b{key}\b", doc), key
