"""The whole push on this machine: local nodes (receiver subprocesses) and a loopback relay chain."""

from __future__ import annotations

import os
import socket

import pytest

from orchestrator.transfer import PushOptions, Target, build_items, push, source_files
from orchestrator.transfer.node_store import HashCache
from orchestrator.transport import LocalTransport, TransportPool
from tests.transfer.helpers import node, random_file


@pytest.fixture
def src(tmp_path):
    random_file(tmp_path / "src" / "rank_0" / "m.ckpt", 300_000)
    random_file(tmp_path / "src" / "data.bin", 1234)
    return tmp_path / "src"


def _items(src, tmp_path):
    return tuple(build_items(source_files(src), HashCache(str(tmp_path / "ctl-cache.json"))))


def _relay(hosts, src, tmp_path):
    """``src`` relayed to ``hosts`` (nodes run locally, each into ``dest<k>``): the result and the bytes."""
    pool = TransportPool({h: LocalTransport(h) for h in hosts})  # "remote" nodes run locally
    items = _items(src, tmp_path)
    targets = [
        Target(node(h, tmp_path / f"w{k}"), str(tmp_path / f"dest{k}"), items) for k, h in enumerate(hosts)
    ]
    try:
        return push(targets, PushOptions(mode="relay"), pool=pool).check(), sum(i.entry.size for i in items)
    finally:
        pool.close()


def test_local_node_push_then_nothing_moves(tmp_path, src):
    n = node("localhost", tmp_path / "w", local=True)
    items = _items(src, tmp_path)
    first = push([Target(n, str(tmp_path / "dest"), items)]).check()
    assert first.controller_bytes == sum(i.entry.size for i in items) and first.nodes[0].route == "direct"
    assert (tmp_path / "dest" / "rank_0" / "m.ckpt").read_bytes() == (src / "rank_0" / "m.ckpt").read_bytes()
    again = push([Target(n, str(tmp_path / "dest"), items)]).check()
    assert again.controller_bytes == 0 and again.nodes[0].skipped == 2 and again.nodes[0].route == "none"


def _loopback_ok() -> bool:
    try:
        socket.create_connection(("127.0.0.2", 9), timeout=0.2).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _loopback_ok(), reason="127.0.0.2 is not routed to loopback here")
def test_relay_chain_over_loopback_sends_once(tmp_path, src):
    hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    result, total = _relay(hosts, src, tmp_path)
    assert result.chains == [hosts] and result.controller_bytes == total
    assert [n.route for n in result.nodes] == ["relay 1/3", "relay 2/3", "relay 3/3"]
    assert all(n.bytes_written == total for n in result.nodes)
    for k in range(3):
        got = tmp_path / f"dest{k}" / "rank_0" / "m.ckpt"
        assert got.read_bytes() == (src / "rank_0" / "m.ckpt").read_bytes()
        assert os.stat(got).st_mtime_ns == os.stat(src / "rank_0" / "m.ckpt").st_mtime_ns


@pytest.mark.skipif(not _loopback_ok(), reason="127.0.0.2 is not routed to loopback here")
def test_a_broken_hop_falls_back_to_direct_pushes(tmp_path, src, monkeypatch):
    from orchestrator.transfer import sender

    real = sender._address
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()  # nothing listens there: the first node cannot forward

    def listen_but_misdirect(n, token, hop):
        return {**real(n, token, hop), "port": dead_port}

    monkeypatch.setattr(sender, "_address", listen_but_misdirect)
    result, total = _relay(["127.0.0.1", "127.0.0.2"], src, tmp_path)
    assert [n.route for n in result.nodes] == ["relay 1/2", "relay 2/2, then direct"]
    assert result.controller_bytes == 2 * total  # once into the chain, once more straight to node 2
    assert len(result.warnings) == 1 and result.warnings[0].startswith("127.0.0.2: the relay 2/2 failed (")
    assert (tmp_path / "dest1" / "data.bin").read_bytes() == (src / "data.bin").read_bytes()


@pytest.mark.skipif(not _loopback_ok(), reason="127.0.0.2 is not routed to loopback here")
def test_a_node_that_cannot_listen_is_left_out_of_the_chain(tmp_path, src, monkeypatch):
    """Node 2 of 3 cannot bind its address: node 1 forwards to node 3, node 2 gets a direct push."""
    from orchestrator.transfer import sender

    real = sender.receive_conf

    def unbindable_on_node2(n, listen=None, forward=None):
        if listen and n.target.host == "127.0.0.2":
            listen = {**listen, "bind": "192.0.2.1"}  # not an address of this machine
        return real(n, listen, forward)

    monkeypatch.setattr(sender, "receive_conf", unbindable_on_node2)
    result, total = _relay(["127.0.0.1", "127.0.0.2", "127.0.0.3"], src, tmp_path)
    assert [n.route for n in result.nodes] == ["relay 1/3", "relay 2/3, then direct", "relay 3/3"]
    assert result.controller_bytes == 2 * total  # into the chain once, to node 2 once
    for k in range(3):
        assert (tmp_path / f"dest{k}" / "data.bin").read_bytes() == (src / "data.bin").read_bytes()
