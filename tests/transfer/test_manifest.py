"""Manifests: which files a source gives, their entries, and the controller's hash cache."""

from __future__ import annotations

import hashlib
import os

import pytest

from orchestrator.errors import InputError
from orchestrator.transfer import manifest, node_store
from orchestrator.transfer.manifest import build_items, prefix_sha256, source_files
from orchestrator.transfer.node_store import HashCache
from tests.transfer.helpers import random_file


def test_folder_gives_its_files_sorted_relative_without_parts(tmp_path):
    random_file(tmp_path / "src" / "rank_1" / "b.ckpt", 10)
    random_file(tmp_path / "src" / "rank_0" / "a.ckpt", 10)
    random_file(tmp_path / "src" / "rank_0" / "a.ckpt.part", 3)
    rels = [rel for _, rel in source_files(tmp_path / "src")]
    assert rels == ["rank_0/a.ckpt", "rank_1/b.ckpt"]


def test_mindrecord_brings_its_index(tmp_path):
    data = random_file(tmp_path / "train.mindrecord", 10)
    random_file(tmp_path / "train.mindrecord.db", 5)
    assert [rel for _, rel in source_files(data)] == ["train.mindrecord", "train.mindrecord.db"]


def test_missing_source_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        source_files(tmp_path / "nope")


def test_entries_carry_size_mtime_and_sha256(tmp_path):
    f = random_file(tmp_path / "x.ckpt", 1000, mtime_s=1_500_000_000)
    (item,) = build_items([(f, "rank_0/x.ckpt")], HashCache(str(tmp_path / "cache.json")))
    e = item.entry
    assert (e.rel, e.size, e.mtime_ns) == ("rank_0/x.ckpt", 1000, 1_500_000_000 * 10**9)
    assert e.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
    assert prefix_sha256(f, 10) == hashlib.sha256(f.read_bytes()[:10]).hexdigest()


def test_hash_cache_skips_rehashing_until_the_file_changes(tmp_path, monkeypatch):
    f = random_file(tmp_path / "x.bin", 100)
    calls = []
    real = node_store.sha256_file
    monkeypatch.setattr(node_store, "sha256_file", lambda p, limit=None: calls.append(p) or real(p, limit))
    cache_file = str(tmp_path / "c" / "cache.json")
    build_items([(f, "x.bin")], HashCache(cache_file))
    build_items([(f, "x.bin")], HashCache(cache_file))  # a fresh process: the cache file is read back
    assert len(calls) == 1
    assert oct(os.stat(cache_file).st_mode & 0o777) == "0o600"
    f.write_bytes(b"changed" + f.read_bytes()[7:])
    os.utime(f, (1_600_000_000, 1_600_000_000))  # same size and mtime: the ctime still differs
    (item,) = build_items([(f, "x.bin")], HashCache(cache_file))
    assert len(calls) == 2 and item.entry.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()


def test_default_cache_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert manifest.default_cache_path() == tmp_path / "orchestrate" / "hashes.json"
