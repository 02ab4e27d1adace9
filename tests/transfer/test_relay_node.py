"""The node-side relay: the listener binds the cluster address only and no stray connection stalls it;
a node forwards the stream while it still stores it (a pipeline)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from orchestrator.transfer import node_relay, node_store
from orchestrator.transfer.manifest import build_items
from orchestrator.transfer.node_receiver import HashCache, receive
from tests.transfer.helpers import random_file, stream_of

TOKEN = "t" * 32


def _listener(**extra) -> node_relay.Listener:
    return node_relay.Listener({"token": TOKEN, "bind": "127.0.0.2", **extra})


def test_the_listener_binds_the_cluster_address_only():
    listener = _listener()
    try:
        assert listener.server.getsockname()[0] == "127.0.0.2"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", listener.port), timeout=2)
    finally:
        listener.server.close()


def test_a_listen_request_without_a_bind_address_is_refused():
    with pytest.raises(SystemExit, match="bind address"):
        node_relay.Listener({"token": TOKEN})
    with pytest.raises(SystemExit, match="cluster address"):
        node_relay.Listener({"token": TOKEN, "bind": "192.0.2.77"})  # not an address of this machine


def test_silent_and_bogus_connections_do_not_stall_the_real_one():
    listener = _listener(handshake_timeout=30)
    addr = ("127.0.0.2", listener.port)
    silent = [socket.create_connection(addr) for _ in range(3)]  # connect, never say anything
    bogus = socket.create_connection(addr)
    bogus.sendall(b"wrong-token\n")
    real = socket.create_connection(addr)
    real.sendall(TOKEN.encode() + b"\npayload")
    real.shutdown(socket.SHUT_WR)
    start = time.monotonic()
    reader = listener.accept(timeout=20, stdin=None)
    took = time.monotonic() - start
    assert reader.read() == b"payload"  # the bytes after the token are kept
    assert took < 5, f"accept waited {took:.1f}s behind silent connections (handshake timeout 30s)"
    for s in silent + [bogus, real]:
        s.close()


def test_no_valid_connection_ends_the_wait():
    listener = _listener(handshake_timeout=0.5)
    stray = socket.create_connection(("127.0.0.2", listener.port))
    with pytest.raises(SystemExit, match="no connection"):
        listener.accept(timeout=1.5, stdin=None)
    stray.close()


def test_a_node_forwards_the_stream_while_its_store_is_still_busy(tmp_path, monkeypatch):
    """The store is held until the next node has the whole stream: only a pipeline gets there."""
    src = random_file(tmp_path / "src" / "a.bin", 6 << 20)  # < the stages' queue: fits in flight
    items = build_items([(src, "a.bin")], HashCache(None))
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    got, forwarded_all = bytearray(), threading.Event()

    def next_node() -> None:
        conn, _ = server.accept()
        while chunk := conn.recv(1 << 20):
            got.extend(chunk)
            if len(got) >= (6 << 20) + len(TOKEN) + 1:
                forwarded_all.set()
        conn.close()

    threading.Thread(target=next_node, daemon=True).start()
    real_write = node_store.PartWriter.write
    held = []

    def held_write(self, pos, chunk):
        held.append(forwarded_all.wait(20))
        real_write(self, pos, chunk)

    monkeypatch.setattr(node_store.PartWriter, "write", held_write)
    conf = {"dest": str(tmp_path / "dest"), "cache": None, "files": {"a.bin": {**vars(items[0].entry), "trusted": 0}},
            "forward": {"host": "127.0.0.1", "port": server.getsockname()[1], "token": TOKEN}}  # fmt: skip
    answer = receive(conf, stream_of([(items[0], 0)]))
    assert answer["ok"] and answer["files"]["a.bin"]["status"] == "ok" and answer["forward_error"] is None
    assert held and held[0], "the store's first write ran before the stream was forwarded"
    assert (tmp_path / "dest" / "a.bin").read_bytes() == src.read_bytes()
    assert bytes(got).startswith(TOKEN.encode() + b"\n") and src.read_bytes() in bytes(got)
    server.close()


def test_write_back_starts_while_a_file_arrives_without_waiting(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(
        node_store, "START_WRITEBACK", lambda fd, off, n, flags: calls.append((off, n, flags))
    )
    src = random_file(tmp_path / "src" / "b.bin", 40 << 20)
    items = build_items([(src, "b.bin")], HashCache(None))
    conf = {
        "dest": str(tmp_path / "dest"),
        "cache": None,
        "files": {"b.bin": {**vars(items[0].entry), "trusted": 0}},
    }
    assert receive(conf, stream_of([(items[0], 0)]))["files"]["b.bin"]["status"] == "ok"
    step = node_store.SYNC_EVERY
    assert [c[:2] for c in calls] == [(k * step, step) for k in range(len(calls))] and len(calls) == (
        40 << 20
    ) // step
    assert all(c[2] == node_store.SYNC_FILE_RANGE_WRITE for c in calls)
    assert node_store._sync_file_range() is not None  # Linux: the real call is there
