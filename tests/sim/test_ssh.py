"""SSH into simulated nodes with host-key checking: paramiko, fabric, OpenSSH (needs root)."""

from __future__ import annotations

import subprocess

import paramiko
import pytest

from tests.fixtures.sim import ssh_client, strict_client

pytestmark = pytest.mark.cluster


def test_paramiko_with_reject_policy_and_known_hosts(sim_cluster, sim_ssh):
    for node in sim_cluster.nodes:
        _, out, _ = sim_ssh(node).exec_command("hostname")
        assert out.read().decode().strip() == node.hostname


def test_fabric_connection_checks_host_keys(sim_cluster):
    from fabric import Config, Connection

    node = sim_cluster.nodes[1]
    config = Config(overrides={"load_ssh_configs": False})
    conn = Connection(
        node.host, user=sim_cluster.user, config=config, connect_kwargs={"key_filename": str(sim_cluster.key)}
    )
    conn.client.load_host_keys(str(sim_cluster.known_hosts))
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with conn:
        assert conn.run("hostname", hide=True, in_stream=False).stdout.strip() == node.hostname


def test_unknown_or_wrong_host_key_is_rejected(sim_cluster, tmp_path):
    n1, n2 = sim_cluster.nodes
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    client = strict_client(empty)
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        client.connect(n1.host, username="root", key_filename=str(sim_cluster.key), timeout=5)
    # node2's key listed under node1's address: a changed host key
    swapped = tmp_path / "swapped"
    line2 = next(x for x in sim_cluster.known_hosts.read_text().splitlines() if x.startswith(n2.host + ","))
    swapped.write_text(line2.replace(f"{n2.host},{n2.hostname}", n1.host) + "\n")
    client = strict_client(swapped)
    with pytest.raises(paramiko.BadHostKeyException):
        client.connect(n1.host, username="root", key_filename=str(sim_cluster.key), timeout=5)


def test_openssh_client_with_strict_checking(sim_cluster):
    node = sim_cluster.nodes[0]
    argv = ["ssh", "-i", str(sim_cluster.key), "-o", f"UserKnownHostsFile={sim_cluster.known_hosts}"]
    argv += ["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"root@{node.host}", "hostname"]
    assert subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip() == node.hostname


def test_password_and_foreign_keys_are_refused(sim_cluster, tmp_path):
    node = sim_cluster.nodes[0]
    # the cluster key works (see above); a fresh key and a password must not
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    client = strict_client(sim_cluster.known_hosts)
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(
            node.host,
            username="root",
            key_filename=str(tmp_path / "k"),
            timeout=5,
            look_for_keys=False,
            allow_agent=False,
        )
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(
            node.host, username="root", password="root", timeout=5, look_for_keys=False, allow_agent=False
        )
    assert ssh_client(sim_cluster, node).get_transport().is_active()
