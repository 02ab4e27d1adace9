"""Pushes to the simulated cluster's real sshd nodes: layout, checksums, mtimes, relay, skip, repair,
interrupt and resume, shared storage."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from orchestrator.checkpoint import checkpoint_targets, inspect_checkpoint
from orchestrator.inventory import load_inventory
from orchestrator.transfer import PushOptions, Target, build_items, push, source_files
from orchestrator.transfer.node_store import HashCache
from tests.transfer.helpers import random_file

pytestmark = pytest.mark.cluster
MB = 1 << 20


@pytest.fixture(scope="module")
def nodes(sim_cluster):
    """The cluster's nodes with one rank each (two ranks in all)."""
    inv = load_inventory(sim_cluster.inventory)
    return [dataclasses.replace(n, devices=(0,), device_ips=n.device_ips[:1]) for n in inv.nodes]


@pytest.fixture
def cache(tmp_path):
    return HashCache(str(tmp_path / "ctl-cache.json"))


def _on(cluster, k: int, cmd: str) -> str:
    res = cluster.exec(k + 1, cmd, user=cluster.user)  # as the job user: the push writes as that user
    assert res.returncode == 0, res.stderr
    return res.stdout


def _sha_mtime(cluster, k: int, path: str) -> tuple[str, int]:
    sha, mtime = _on(cluster, k, f"sha256sum {path} | cut -d' ' -f1; stat -c %Y {path}").split()
    return sha, int(mtime)


def _local(path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), int(os.stat(path).st_mtime)


def test_complete_checkpoint_relayed_skipped_then_repaired(sim_cluster, nodes, tmp_path, cache, monkeypatch):
    from orchestrator.transfer import remote

    ckpt = inspect_checkpoint(random_file(tmp_path / "ck" / "iflytekspark.ckpt", 3 * MB))
    dest = "/opt/orchestrate-node/t-complete"
    _on(sim_cluster, 1, f"mkdir -p {dest}/rank_0 {dest}/rank_1 && echo old > {dest}/rank_0/old.ckpt && "
                        f"echo x > {dest}/rank_1/stale.ckpt")  # fmt: skip
    targets = checkpoint_targets(ckpt, nodes, dest, cache=cache)
    first = push(targets).check()
    assert first.chains == [[n.host for n in nodes]] and first.controller_bytes == 3 * MB  # sent once
    assert [n.bytes_written for n in first.nodes] == [3 * MB, 3 * MB]
    assert first.nodes[1].removed == ["rank_0/old.ckpt", "rank_1/stale.ckpt"]
    for k in range(2):
        assert _on(sim_cluster, k, f"cd {dest} && find . -type f | sort").split() == [
            "./rank_0/iflytekspark.ckpt"
        ]
        assert _sha_mtime(sim_cluster, k, f"{dest}/rank_0/iflytekspark.ckpt") == _local(ckpt.files[0])

    sessions: list = []
    real = remote.Session

    def counted(t, target):
        sessions.append(t.host)
        return real(t, target)

    monkeypatch.setattr(remote, "Session", counted)
    again = push(targets).check()
    assert again.controller_bytes == 0 and again.bytes_written == 0
    assert [(n.route, n.skipped) for n in again.nodes] == [("none", 1), ("none", 1)]
    assert sessions == []  # each node said it holds everything in one short command: no receiver session

    path = f"{dest}/rank_0/iflytekspark.ckpt"  # one byte flipped on node 2, its mtime put back
    _on(sim_cluster, 1, f"printf Z | dd of={path} bs=1 seek=12345 conv=notrunc status=none && "
                        f"touch -d @{_local(ckpt.files[0])[1]} {path}")  # fmt: skip
    assert _sha_mtime(sim_cluster, 1, path)[0] != _local(ckpt.files[0])[0]
    repaired = push(targets).check()
    assert [n.bytes_written for n in repaired.nodes] == [0, 3 * MB]
    assert sessions == [nodes[1].host]  # its changed ctime: the cache no longer vouches, the scan hashes
    assert _sha_mtime(sim_cluster, 1, path) == _local(ckpt.files[0])


def test_shards_go_to_the_node_running_their_rank(sim_cluster, nodes, tmp_path, cache):
    for r in range(2):
        random_file(tmp_path / "m" / f"rank_{r}" / f"net_rank_{r}.ckpt", MB + r)
    ckpt = inspect_checkpoint(tmp_path / "m")
    dest = "/opt/orchestrate-node/t-shards"
    result = push(checkpoint_targets(ckpt, nodes, dest, cache=cache), PushOptions(mode="auto")).check()
    assert result.chains == [] and result.controller_bytes == 2 * MB + 1  # disjoint: direct, each once
    for k in range(2):
        assert _on(sim_cluster, k, f"cd {dest} && find . -type f").split() == [
            f"./rank_{k}/net_rank_{k}.ckpt"
        ]
        assert _sha_mtime(sim_cluster, k, f"{dest}/rank_{k}/net_rank_{k}.ckpt") == _local(ckpt.files[k])


def _receivers_gone(cluster) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all(cluster.exec(k, ["pgrep", "-f", "node_receiver"]).returncode != 0 for k in (1, 2)):
            return
        time.sleep(0.1)
    raise AssertionError("node receivers still running")


def test_killed_push_resumes_from_the_parts(sim_cluster, nodes, tmp_path):
    data = random_file(tmp_path / "d" / "train.mindrecord", 6 * MB)
    dest = "/opt/orchestrate-node/t-resume"
    cli = [sys.executable, "-m", "orchestrator.cli.main", "push", str(sim_cluster.inventory), str(data),
           "--to", dest, "--limit-rate", "1M", "--json"]  # fmt: skip
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    proc = subprocess.Popen(cli, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = f"{dest}/train.mindrecord.part"
    try:
        deadline = time.monotonic() + 30
        while int(sim_cluster.exec(2, f"stat -c %s {part} 2>/dev/null || echo 0").stdout) < MB:
            assert time.monotonic() < deadline and proc.poll() is None, "the push never got going"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    _receivers_gone(sim_cluster)
    kept = [int(sim_cluster.exec(k, f"stat -c %s {part}").stdout) for k in (1, 2)]
    assert all(MB <= n < 6 * MB for n in kept)

    items = tuple(
        build_items(source_files(data), HashCache(str(tmp_path / "xdg" / "orchestrate" / "hashes.json")))
    )
    result = push([Target(n, dest, items) for n in nodes]).check()
    assert result.controller_bytes == 6 * MB - min(kept)  # only what the chain still lacked
    assert [n.bytes_resumed for n in result.nodes] == kept
    assert [n.bytes_written for n in result.nodes] == [6 * MB - n for n in kept]
    for k in range(2):
        assert _sha_mtime(sim_cluster, k, f"{dest}/train.mindrecord") == _local(data)
        assert sim_cluster.exec(k + 1, f"test -e {part}").returncode != 0


def test_shared_storage_is_verified_and_written_once(sim_cluster, nodes, tmp_path, cache, request):
    data = random_file(tmp_path / "d" / "eval.bin", MB)
    items = tuple(build_items(source_files(data), cache))
    shared = Path(tempfile.mkdtemp(prefix="orchestrate-shared-", dir="/tmp"))  # one folder every node sees
    shared.chmod(0o777)  # the job user writes there (pytest's tmp_path is private to root)
    request.addfinalizer(lambda: shutil.rmtree(shared, ignore_errors=True))
    result = push([Target(n, str(shared / "in"), items) for n in nodes],
                  PushOptions(shared_paths=(str(shared),))).check()  # fmt: skip
    assert [n.route for n in result.nodes] == ["direct", "shared"] and result.controller_bytes == MB
    assert (shared / "in" / "eval.bin").read_bytes() == data.read_bytes()
    assert not [p for p in shared.rglob(".orchestrate-shared-*")]

    private = "/opt/orchestrate-node/t-not-shared"  # each node's own overlay: declared shared, is not
    result = push(
        [Target(n, private + "/in", items) for n in nodes], PushOptions(shared_paths=(private,))
    ).check()
    assert result.controller_bytes == MB and result.chains == [[n.host for n in nodes]]
    assert "declared shared" in result.warnings[0] and nodes[1].host in result.warnings[0]
