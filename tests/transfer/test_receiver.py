"""The node receiver in-process: scan, receive, resume from a .part, verify, prune."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os

import pytest

from orchestrator.transfer.manifest import build_items
from orchestrator.transfer.node_receiver import HashCache, receive, scan
from tests.transfer.helpers import random_file, stream_of


@pytest.fixture
def items(tmp_path):
    a = random_file(tmp_path / "src" / "a.bin", 3 << 20)
    b = random_file(tmp_path / "src" / "b.bin", 1000, mtime_s=1_400_000_000)
    return build_items([(a, "rank_0/a.bin"), (b, "b.bin")], HashCache(None))


def _conf(dest, items, trusted=None, **kw):
    trusted = trusted or {}
    files = {i.entry.rel: {**vars(i.entry), "trusted": trusted.get(i.entry.rel, 0)} for i in items}
    return {"dest": str(dest), "cache": str(dest.parent / "cache.json"), "files": files, **kw}


def _scan(dest, items, **kw):
    return scan({"dest": str(dest), "cache": str(dest.parent / "cache.json"),
                 "files": [vars(i.entry) for i in items], **kw})  # fmt: skip


def test_receive_writes_verified_files_with_their_mtimes(tmp_path, items):
    dest = tmp_path / "node" / "dest"
    answer = receive(_conf(dest, items), stream_of((i, 0) for i in items))
    assert answer["ok"] and answer["written"] == sum(i.entry.size for i in items)
    for i in items:
        path = dest / i.entry.rel
        assert path.read_bytes() == i.source.read_bytes()
        assert os.stat(path).st_mtime_ns == i.entry.mtime_ns
        assert not (dest / (i.entry.rel + ".part")).exists()
    assert all(f["same"] for f in _scan(dest, items)["files"].values())


def test_interrupted_stream_keeps_the_part_and_resume_appends_only_the_rest(tmp_path, items):
    dest = tmp_path / "node" / "dest"
    cut = 1 << 20
    answer = receive(_conf(dest, items), stream_of([(items[0], 0)], cut=cut))
    assert not answer["ok"] and answer["interrupted"]
    part = dest / "rank_0/a.bin.part"
    kept = part.stat().st_size
    assert 0 < kept < items[0].entry.size and not (dest / "rank_0/a.bin").exists()
    state = _scan(dest, items)["files"]["rank_0/a.bin"]
    assert state["part_size"] == kept
    assert state["part_sha256"] == hashlib.sha256(items[0].source.read_bytes()[:kept]).hexdigest()
    again = receive(_conf(dest, items, {"rank_0/a.bin": kept}), stream_of([(items[0], kept), (items[1], 0)]))
    assert again["ok"] and again["written"] == items[0].entry.size - kept + items[1].entry.size
    assert (dest / "rank_0/a.bin").read_bytes() == items[0].source.read_bytes()


def test_a_stream_that_starts_after_the_nodes_prefix_is_refused(tmp_path, items):
    dest = tmp_path / "node" / "dest"
    answer = receive(_conf(dest, items[:1]), stream_of([(items[0], 100)]))
    assert answer["files"]["rank_0/a.bin"]["status"] == "error"
    assert not (dest / "rank_0/a.bin").exists()


def test_corrupted_bytes_fail_the_checksum_and_leave_nothing(tmp_path, items):
    dest = tmp_path / "node" / "dest"
    stream = stream_of([(items[1], 0)])
    raw = bytearray(stream.getvalue())
    raw[-20] ^= 0xFF  # inside b.bin's data, before the end frame
    answer = receive(_conf(dest, items[1:]), type(stream)(bytes(raw)))
    assert answer["files"]["b.bin"]["status"] == "bad" and not answer["files"]["b.bin"].get("ok")
    assert not (dest / "b.bin").exists() and not (dest / "b.bin.part").exists()


def test_a_forged_stream_header_cannot_override_the_expected_hash(tmp_path, items):
    dest = tmp_path / "node" / "dest"
    forged = bytes(4) + items[1].source.read_bytes()[4:]  # a relay hop swapped the data and its header
    fake = dataclasses.replace(
        items[1], entry=dataclasses.replace(items[1].entry, sha256=hashlib.sha256(forged).hexdigest())
    )
    raw = stream_of([(fake, 0)]).getvalue().replace(items[1].source.read_bytes(), forged)
    answer = receive(_conf(dest, items[1:]), io.BytesIO(raw))
    assert answer["files"]["b.bin"]["status"] == "bad" and not (dest / "b.bin").exists()


def test_scan_detects_a_changed_byte_and_fixes_a_wrong_mtime(tmp_path, items):
    dest = tmp_path / "node" / "dest"
    receive(_conf(dest, items), stream_of((i, 0) for i in items))
    b = dest / "b.bin"
    os.utime(b, (1, 1))
    state = _scan(dest, items)["files"]["b.bin"]
    assert state == {"same": True, "mtime_fixed": True} and b.stat().st_mtime_ns == items[1].entry.mtime_ns
    data = bytearray(b.read_bytes())
    data[5] ^= 1
    b.write_bytes(bytes(data))
    os.utime(b, ns=(items[1].entry.mtime_ns, items[1].entry.mtime_ns))  # same size and mtime as before
    assert _scan(dest, items)["files"]["b.bin"]["same"] is False


def test_files_not_wanted_are_only_passed_along(tmp_path, items):
    dest = tmp_path / "node" / "dest"
    conf = _conf(dest, items[1:])
    answer = receive(conf, stream_of((i, 0) for i in items))
    assert answer["files"]["rank_0/a.bin"] == {"status": "forwarded"}
    assert not (dest / "rank_0").exists() and (dest / "b.bin").exists()


def test_exclusive_folders_keep_exactly_one_checkpoint(tmp_path, items):
    dest = tmp_path / "node" / "dest"
    random_file(dest / "rank_0" / "old.ckpt", 10)
    random_file(dest / "rank_3" / "stale.ckpt", 10)
    random_file(dest / "rank_0" / "notes.txt", 10)
    exclusive = {"rank_0": ["a.bin"], "rank_*": []}
    assert _scan(dest, items, exclusive=exclusive)["strays"] == ["rank_0/old.ckpt", "rank_3/stale.ckpt"]
    answer = receive(_conf(dest, items, exclusive=exclusive), stream_of((i, 0) for i in items))
    assert answer["removed"] == ["rank_0/old.ckpt", "rank_3/stale.ckpt"]
    assert sorted(p.name for p in (dest / "rank_0").iterdir()) == ["a.bin", "notes.txt"]
    assert not (dest / "rank_3").exists()


def test_a_session_resumes_from_the_prefix_its_scan_hashed_without_reading_it_again(
    tmp_path, items, monkeypatch
):
    from orchestrator.transfer import node_store

    dest = tmp_path / "node" / "dest"
    receive(_conf(dest, items[:1]), stream_of([(items[0], 0)], cut=1 << 20))
    parts: dict = {}
    kept = scan({"dest": str(dest), "cache": None, "files": [vars(items[0].entry)]}, parts)["files"][
        "rank_0/a.bin"
    ]["part_size"]
    monkeypatch.setattr(node_store, "_hash_file", lambda *a: pytest.fail("the prefix was read again"))
    conf = _conf(dest, items[:1], {"rank_0/a.bin": kept})
    answer = receive(conf, stream_of([(items[0], kept)]), parts=parts)
    assert answer["ok"] and answer["written"] == items[0].entry.size - kept
    assert (dest / "rank_0/a.bin").read_bytes() == items[0].source.read_bytes()


def test_holds_only_files_as_they_are_with_a_known_hash_and_never_hashes(tmp_path, items, monkeypatch):
    from orchestrator.transfer import node_store
    from orchestrator.transfer.node_receiver import holds

    dest = tmp_path / "node" / "dest"
    conf = {
        "dest": str(dest),
        "cache": str(dest.parent / "cache.json"),
        "files": [vars(i.entry) for i in items],
    }
    assert not holds(conf)  # nothing there yet
    receive(_conf(dest, items), stream_of((i, 0) for i in items))
    assert holds(conf)  # the receive put each file's hash in the node's cache
    b = dest / "b.bin"
    with monkeypatch.context() as m:
        m.setattr(node_store, "_hash_file", lambda *a: pytest.fail("holds hashed a file"))
        os.utime(b, ns=(1, 1))
        assert not holds(conf)  # another mtime
        os.utime(b, ns=(items[1].entry.mtime_ns, items[1].entry.mtime_ns))
        assert not holds(conf)  # as before, but its ctime moved: the cache no longer vouches for it
    _scan(dest, items)  # the push's scan hashes it again
    assert holds(conf)
    random_file(dest / "rank_0" / "old.ckpt", 10)
    assert holds(conf) and not holds(dict(conf, exclusive={"rank_0": ["a.bin"]}))  # a stray checkpoint


def test_holds_on_a_node_loads_no_sockets_threads_or_hashing(tmp_path):
    """A node's ``holds`` (each re-push, each launch's stage) starts the node's Python and imports what it
    uses: the relay (sockets, threads, subprocess), OpenSSL and ctypes wait for a receive."""
    import subprocess
    import sys

    from orchestrator.transfer import remote

    for name, data in remote.receiver_files()[0]:
        (tmp_path / name).write_bytes(data)
    heavy = ("socket", "threading", "subprocess", "hashlib", "ctypes", "typing", "select", "queue")
    probe = (f"import json, sys; sys.argv = ['node_receiver.py', 'holds']; import node_receiver; "
             f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))")  # fmt: skip
    conf = {"dest": str(tmp_path / "dest"), "cache": str(tmp_path / "cache.json"), "files": []}
    out = subprocess.run([sys.executable, "-S", "-c", probe], cwd=tmp_path, input=json.dumps(conf),
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == "[]", out.stdout
