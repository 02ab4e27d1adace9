"""A simulated cluster behind a bastion (``sim up --bastion``): the nodes are reachable only through it,
and discover, plan, doctor, push and both SSH paths (paramiko, OpenSSH bulk streams) go through it with
host keys checked at every hop."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

from orchestrator.errors import HostKeyError, TransportError
from orchestrator.sim import bastion
from orchestrator.transport import SshOptions, SshTransport
from tests.launch.conftest import cli

pytestmark = pytest.mark.cluster


def _jump(cluster) -> str:
    return cluster.state().bastion.address


def _opts(cluster, **kw) -> SshOptions:
    base = dict(user=cluster.user, key=str(cluster.key), known_hosts=str(cluster.known_hosts), connect_timeout=5,
                proxy_jump=(_jump(cluster),), written=("proxy_jump",))  # fmt: skip
    return SshOptions(**{**base, **kw})


_cli = functools.partial(cli, timeout=180)


def _tiny(cluster, tmp_path) -> Path:
    inv = tmp_path / "inv.yaml"
    inv.write_text(Path(cluster.inventory).read_text().replace("\nnodes:", "\njob: {model: tiny}\nnodes:", 1))
    return inv


def _bulk(t: SshTransport, argv: list[str]):
    """Run ``argv`` as an OpenSSH bulk stream; its exit (code, stdout, stderr)."""
    with t.open_stream(argv, bulk=True) as stream:
        stream.close_stdin()
        return stream.wait(30)


def test_inventory_names_the_bastion_and_direct_connections_fail(bastion_cluster):
    c = bastion_cluster
    assert f"proxy_jump: {_jump(c)}" in Path(c.inventory).read_text()
    node = c.nodes[0]
    with pytest.raises(TransportError, match=rf"{node.host}:22: .*(no route to host|unreachable)"):
        SshTransport(node.host, _opts(c, proxy_jump=(), connect_timeout=3)).connect()
    t = SshTransport(node.host, _opts(c)).connect()
    try:
        assert t.run(["hostname"]).stdout.strip() == node.hostname
        src = t.run(["sh", "-c", "echo $SSH_CONNECTION"]).stdout.split()[0]
        assert src == bastion.private_address(c.state())  # the node sees the bastion, not the controller
        ended = _bulk(t, ["sh", "-c", "hostname; echo $SSH_CONNECTION"])
        assert ended.ok, ended.stderr
        lines = ended.stdout.decode().split("\n")
        assert lines[0] == node.hostname and lines[1].split()[0] == src
    finally:
        t.close()


def test_wrong_bastion_host_key_is_refused_on_both_paths(bastion_cluster, tmp_path):
    c = bastion_cluster
    lines = Path(c.known_hosts).read_text().splitlines()
    jump = _jump(c)
    node_key = next(line for line in lines if line.startswith(c.nodes[0].host + ",")).split(None, 1)[1]
    forged = [f"{jump} {node_key}" if line.startswith(jump + ",") else line for line in lines]
    known = tmp_path / "known_hosts"
    known.write_text("\n".join(forged) + "\n")
    t = SshTransport(c.nodes[0].host, _opts(c, known_hosts=str(known)))
    with pytest.raises(HostKeyError, match=rf"hop 1/2 \(jump host {c.user}@{jump}:22\): host key CHANGED"):
        t.connect()
    ended = _bulk(t, ["hostname"])
    assert (
        not ended.ok
        and b"host key" in ended.stderr.lower()
        and c.nodes[0].hostname.encode() not in ended.stdout
    )


def test_unknown_node_key_behind_the_bastion_names_hop_2(bastion_cluster, tmp_path):
    c = bastion_cluster
    node = c.nodes[1]
    lines = Path(c.known_hosts).read_text().splitlines()
    known = tmp_path / "known_hosts"
    known.write_text("\n".join(x for x in lines if not x.startswith(node.host + ",")) + "\n")
    with pytest.raises(
        HostKeyError, match=rf"hop 2/2 \(node {c.user}@{node.host}:22\): unknown host key.*jump host"
    ):
        SshTransport(node.host, _opts(c, known_hosts=str(known))).connect()


def test_ssh_config_aliases_and_proxyjump(bastion_cluster, tmp_path):
    c = bastion_cluster
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host login\n  HostName {_jump(c)}\n"
        f"Host gpu*\n  ProxyJump login\n"
        + "".join(f"Host gpu{i}\n  HostName {n.host}\n" for i, n in enumerate(c.nodes, 1))
        + f"Host *\n  User {c.user}\n  IdentityFile {c.key}\n"
    )
    o = SshOptions(known_hosts=str(c.known_hosts), config=str(config), connect_timeout=5)
    t = SshTransport("gpu2", o).connect()
    try:
        assert t.run(["hostname"]).stdout.strip() == c.nodes[1].hostname
        ended = _bulk(t, ["hostname"])
        assert ended.ok and ended.stdout.decode().strip() == c.nodes[1].hostname, ended.stderr
    finally:
        t.close()


def test_discover_plan_doctor_and_push_through_the_bastion(bastion_cluster, tmp_path):
    c = bastion_cluster
    inv = _tiny(c, tmp_path)
    doctor = _cli("doctor", str(inv))
    assert doctor.returncode == 0 and "doctor passed" in doctor.stdout, doctor.stdout + doctor.stderr
    plan = _cli("plan", str(inv), "--task", "pretrain", "--discover", "--out", str(tmp_path / "plan"))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    table = (tmp_path / "plan" / "rank_table.json").read_text()  # device IPs discovered through it
    assert all(n.host in table for n in c.nodes)
    assert all(ip in table for ip in c.read_hardware().nodes[1].device_ips)
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(3 << 20))
    for mode in ("relay", "direct"):  # relay: node-to-node on the private network; direct: each through it
        push = _cli("push", str(inv), str(blob), "--to", f"/opt/orchestrate-node/{mode}", "--mode", mode)
        assert push.returncode == 0, push.stdout + push.stderr
        for n in c.nodes:
            assert (n.workdir / mode / "blob.bin").read_bytes() == blob.read_bytes(), (mode, n.hostname)


def test_two_hop_chain_on_both_paths(bastion_cluster):
    """A chain of two jump hosts (the bastion twice: it can reach itself), as nested ProxyCommands."""
    c = bastion_cluster
    jump = _jump(c)
    t = SshTransport(c.nodes[0].host, _opts(c, proxy_jump=(jump, f"{c.user}@{jump}:22"))).connect()
    try:
        assert len(t._jumps) == 2 and t.run(["hostname"]).stdout.strip() == c.nodes[0].hostname
        ended = _bulk(t, ["hostname"])
        assert ended.ok and ended.stdout.decode().strip() == c.nodes[0].hostname, ended.stderr
    finally:
        t.close()


def test_node_unreachable_from_the_bastion_names_hop_2(bastion_cluster):
    c = bastion_cluster
    o = _opts(c, port=2222, proxy_jump=(f"{_jump(c)}:22",))  # nothing listens on 2222 on the node
    with pytest.raises(
        TransportError, match=rf"hop 2/2 .*jump host {c.user}@{_jump(c)}:22 cannot reach .*connect failed"
    ):
        SshTransport(c.nodes[0].host, o).connect()
