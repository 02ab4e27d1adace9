"""Routes to a node (jump hosts, OpenSSH config) and how both transports follow them; no cluster needed."""

from __future__ import annotations

import shlex
import socket

import pytest

from orchestrator.errors import TransportError
from orchestrator.transport import SshOptions, SshTransport
from orchestrator.transport.jump import parse_chain, parse_jump
from orchestrator.transport.openssh import openssh_argv
from orchestrator.transport.route import route

CONFIG = """
Host login
    HostName 192.0.2.10
    User admin
    Port 2222
    IdentityFile ~/.ssh/login_key
Host gpu*
    ProxyJump login
    User spark
Host gpu01
    HostName 10.9.0.1
Host legacy
    ProxyCommand nc %h %p
"""


def _opts(tmp_path, **kw) -> SshOptions:
    config = tmp_path / "ssh_config"
    config.write_text(CONFIG)
    return SshOptions(**{"config": str(config), "known_hosts": str(tmp_path / "kh"), **kw})


def test_parse_jump_specs():
    assert parse_jump("admin@login:2222") == parse_jump("ssh://admin@login:2222")
    j = parse_jump("admin@login:2222")
    assert (j.user, j.host, j.port, str(j)) == ("admin", "login", 2222, "admin@login:2222")
    assert parse_jump("[fd00::1]:22").host == "fd00::1"
    assert parse_chain("none") == () and len(parse_chain("a,b@c")) == 2
    for bad in ("a@b:99999", "@host", "a b", "x@:22"):
        with pytest.raises(ValueError):
            parse_jump(bad)


def test_explicit_chain_uses_node_settings_unless_spec_names_them():
    o = SshOptions(
        user="spark", port=22, key="/k", proxy_jump=("admin@b1:2222", "b2"), written=("proxy_jump",)
    )
    hops = route("10.0.0.5", o)
    assert [h.where for h in hops] == ["admin@b1:2222", "spark@b2:22", "spark@10.0.0.5:22"]
    assert {h.key for h in hops} == {"/k"}


def test_ssh_config_alias_hostname_user_port_key_and_proxyjump(tmp_path):
    hops = route("gpu01", _opts(tmp_path))
    assert [h.where for h in hops] == ["admin@192.0.2.10:2222", "spark@10.9.0.1:22"]
    assert hops[0].key.endswith("/.ssh/login_key") and hops[1].key is None
    assert [h.name for h in hops] == ["login", "gpu01"]


def test_inventory_keys_written_win_over_the_config(tmp_path):
    o = _opts(tmp_path, user="ops", key="/mine", written=("key", "user", "proxy_jump"), proxy_jump=())
    hops = route("gpu01", o)
    assert [h.where for h in hops] == ["ops@10.9.0.1:22"] and hops[0].key == "/mine"


def test_proxycommand_in_config_is_refused(tmp_path):
    with pytest.raises(TransportError, match="Host legacy uses ProxyCommand.*ProxyJump"):
        route("legacy", _opts(tmp_path))


def test_openssh_gets_the_same_route_with_checks_at_every_hop(tmp_path):
    argv = openssh_argv("gpu01", _opts(tmp_path), "hostname")
    assert argv[-2:] == ["10.9.0.1", "hostname"] and argv[argv.index("-l") + 1] == "spark"
    assert argv[argv.index("-F") + 1] == "/dev/null" and "GlobalKnownHostsFile=/dev/null" in argv
    proxy = next(a for a in argv if a.startswith("ProxyCommand="))[len("ProxyCommand=") :]
    inner = shlex.split(proxy)
    assert inner[-4:] == ["-W", "10.9.0.1:22", "--", "192.0.2.10"]
    assert inner[inner.index("-l") + 1] == "admin" and inner[inner.index("-p") + 1] == "2222"
    assert "StrictHostKeyChecking=yes" in inner and f'UserKnownHostsFile="{tmp_path}/kh"' in inner


def test_unreachable_jump_host_is_named_as_hop_1(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "kh").write_text("")
    o = SshOptions(user="spark", known_hosts=str(tmp_path / "kh"), connect_timeout=2,
                   proxy_jump=(f"127.0.0.1:{port}",), written=("proxy_jump",))  # fmt: skip
    with pytest.raises(
        TransportError, match=rf"hop 1/2 \(jump host spark@127.0.0.1:{port}\): connection refused"
    ):
        SshTransport("10.9.0.1", o).connect()
