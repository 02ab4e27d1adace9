"""The relay on the simulated cluster's real sshd nodes: the listener binds the node's cluster address
(loopback with SSH hops), and a chain whose hops run through SSH delivers every byte once."""

from __future__ import annotations

import dataclasses
from functools import partial

import pytest

from orchestrator.inventory import load_inventory
from orchestrator.transfer import PushOptions, Target, build_items, push, remote, sender, source_files
from orchestrator.transfer.node_store import HashCache
from orchestrator.transfer.routes import needs_of
from orchestrator.transport import TransportPool, connect
from tests.transfer.helpers import random_file

pytestmark = pytest.mark.cluster
MB = 1 << 20


@pytest.fixture(scope="module")
def nodes(sim_cluster):
    inv = load_inventory(sim_cluster.inventory)
    return [dataclasses.replace(n, devices=(0,), device_ips=n.device_ips[:1]) for n in inv.nodes]


def _listening(cluster, k: int, port: int) -> list[str]:
    """Local addresses (dotted) of node ``k``'s LISTEN sockets on ``port`` (from /proc/net/tcp)."""
    out = []
    for line in cluster.exec(k, "cat /proc/net/tcp").stdout.splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, hexport = local.split(":")
        if state == "0A" and int(hexport, 16) == port:
            out.append(".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return out


@pytest.mark.parametrize("hop, bound", [("tcp", "node"), ("ssh", "127.0.0.1")])
def test_the_relay_listener_binds_the_cluster_address_only(sim_cluster, nodes, tmp_path, hop, bound):
    items = tuple(build_items(source_files(random_file(tmp_path / "x.bin", 1000)), HashCache(None)))
    target = Target(nodes[1], "/opt/orchestrate-node/t-bind", items)
    pool = TransportPool(factory=partial(connect, lazy=True))
    try:
        t = pool.get(target.node)
        session = remote.Session(t, target)
        need = needs_of(target, session.scan(t), lambda *a: False, session)
        port = sender._address(need, sender._start_listening(need, hop), hop)["port"]
        want = target.host if bound == "node" else bound
        assert _listening(sim_cluster, 2, port) == [want]
        session.close()
    finally:
        pool.close()


@pytest.fixture
def node_keys(sim_cluster):
    """The job user on every node gets the cluster's key and known_hosts (node-to-node SSH), removed after."""
    key, known = sim_cluster.key.read_text(), sim_cluster.known_hosts.read_text()
    user = sim_cluster.user
    script = (
        'd=/home/$0/.ssh; printf %s "$1" > $d/id_ed25519 && printf %s "$2" > $d/known_hosts && '
        "chmod 600 $d/id_ed25519 && chown $0: $d/id_ed25519 $d/known_hosts"
    )
    for k in (1, 2):
        res = sim_cluster.exec(k, ["sh", "-c", script, user, key, known])
        assert res.returncode == 0, res.stderr
    yield
    for k in (1, 2):
        sim_cluster.exec(k, f"rm -f /home/{user}/.ssh/id_ed25519 /home/{user}/.ssh/known_hosts")


def test_a_chain_with_ssh_hops_delivers_every_byte_once(sim_cluster, nodes, tmp_path, node_keys):
    src = random_file(tmp_path / "src" / "w.bin", 3 * MB)
    items = tuple(build_items(source_files(src), HashCache(None)))
    dest = "/opt/orchestrate-node/t-sshhop"
    result = push([Target(n, dest, items) for n in nodes], PushOptions(relay_hop="ssh")).check()
    assert [n.route for n in result.nodes] == ["relay 1/2", "relay 2/2"]  # no fallback to direct
    assert result.controller_bytes == 3 * MB
    for k in (1, 2):
        got = sim_cluster.exec(k, f"sha256sum {dest}/w.bin", user=sim_cluster.user).stdout.split()[0]
        assert got == items[0].entry.sha256
    sim_cluster.exec(1, f"rm -rf {dest}")
    sim_cluster.exec(2, f"rm -rf {dest}")


def test_ssh_hops_without_node_keys_fall_back_to_direct(sim_cluster, nodes, tmp_path):
    src = random_file(tmp_path / "src" / "w.bin", MB)
    items = tuple(build_items(source_files(src), HashCache(None)))
    dest = "/opt/orchestrate-node/t-sshhop-nokey"
    result = push([Target(n, dest, items) for n in nodes], PushOptions(relay_hop="ssh")).check()
    assert result.nodes[1].route == "relay 2/2, then direct" and result.controller_bytes == 2 * MB
    sim_cluster.exec(1, f"rm -rf {dest}")
    sim_cluster.exec(2, f"rm -rf {dest}")
