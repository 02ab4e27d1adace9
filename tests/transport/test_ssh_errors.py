"""SshTransport failures that need no cluster: every one a clear TransportError naming the host."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from orchestrator.errors import HostKeyError, TransportError
from orchestrator.transport import LocalTransport, SshOptions, SshTransport, connect


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_names_host_port_user(tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    port = _free_port()
    t = SshTransport(
        "127.0.0.1", SshOptions(user="alice", port=port, known_hosts=str(known), connect_timeout=2)
    )
    with pytest.raises(TransportError, match=rf"alice@127.0.0.1:{port}: connection refused.*sshd"):
        t.connect()


def test_missing_known_hosts_file_is_host_key_error(tmp_path):
    t = SshTransport("127.0.0.1", SshOptions(known_hosts=str(tmp_path / "nope")))
    with pytest.raises(HostKeyError, match="does not exist.*ssh-keyscan"):
        t.connect()


def test_not_an_ssh_server_is_clear(tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        t = SshTransport("127.0.0.1", SshOptions(port=port, known_hosts=str(known), connect_timeout=0.3))
        with pytest.raises(TransportError, match=f"127.0.0.1:{port}"):
            t.connect()


def test_options_from_inventory_settings_expand_key():
    settings = SimpleNamespace(user="u", port=2222, key="~/k", known_hosts=None, connect_timeout=3)
    opts = SshOptions.of(settings)
    assert (opts.user, opts.port, opts.connect_timeout) == ("u", 2222, 3.0)
    assert not opts.key.startswith("~") and opts.known_hosts_path.endswith("/.ssh/known_hosts")


def test_connect_local_node_gives_local_transport():
    assert isinstance(connect(SimpleNamespace(host="127.0.0.1", local=True)), LocalTransport)
