"""``ssh.proxy_jump`` and ``ssh.config`` in the inventory: parsed, merged per node, bad values named."""

from __future__ import annotations

from orchestrator.transport import SshOptions
from orchestrator.transport.route import route
from tests.inventory.util import find, parse, problems

BASE = """\
cluster:
  name: t
  profile: cpu
  workdir: /w
  python: /usr/bin/python3
  ssh: {user: spark, proxy_jump: "admin@login.example.com:2222,10.0.0.254"}
nodes:
  - host: 10.0.0.1
  - host: 10.0.0.2
    ssh: {proxy_jump: none}
  - host: 10.0.0.3
    ssh: {proxy_jump: [jump2]}
"""


def test_cluster_chain_node_override_and_none():
    inv = parse(BASE)
    chains = [n.ssh.proxy_jump for n in inv.nodes]
    assert chains == [("admin@login.example.com:2222", "10.0.0.254"), (), ("jump2",)]
    hops = route(inv.nodes[0].host, SshOptions.of(inv.nodes[0].ssh))
    assert [h.where for h in hops] == [
        "admin@login.example.com:2222",
        "spark@10.0.0.254:22",
        "spark@10.0.0.1:22",
    ]
    assert route("10.0.0.2", SshOptions.of(inv.nodes[1].ssh))[0].where == "spark@10.0.0.2:22"


def test_bad_jump_hosts_are_named_with_their_line():
    found = problems(BASE.replace("10.0.0.254", "x@:99").replace("[jump2]", "[3]"))
    assert "bad jump host" in find(found, "cluster.ssh.proxy_jump").message
    assert find(found, "nodes[2].ssh.proxy_jump[0]").line == 12


def test_config_path_is_resolved_and_must_exist(tmp_path):
    (tmp_path / "ssh_config").write_text("Host *\n  User x\n")
    text = BASE.replace("ssh: {user: spark,", "ssh: {config: ssh_config, user: spark,")
    inv = parse(text, str(tmp_path))
    assert inv.nodes[0].ssh.config == str(tmp_path / "ssh_config")
    assert set(inv.nodes[0].ssh.written) == {"config", "proxy_jump", "user"}
    missing = find(problems(text.replace("ssh_config", "nope"), str(tmp_path)), "cluster.ssh.config")
    assert "no OpenSSH config file" in missing.message
