"""`orchestrate push` of one checkpoint to 1, 2, 4 and 8 simulated nodes, against plain OpenSSH copies.

In one run on one 8-node simulated cluster (real sshd, host keys checked by every tool): for each node
count, the baselines are `scp` and `ssh host 'cat > file' < file` (with OpenSSH's default cipher, and
with the AES-GCM-first preference push uses) of the same file to each node one after another (the
sim's key and known_hosts); then `push` (relay chain where nodes reach each
other), then the re-push of the unchanged file. ``--repeat N`` interleaves N rounds and keeps each
tool's best time (the machine is shared). The controller's first hashing of the file is timed on its
own (later pushes hit the hash cache). Node folders are emptied between runs.

Run: ``.venv/bin/python bench/bench_push.py [--size-mb 1024] [--nodes 1,2,4,8] [--repeat 1] [--direct]``
(root).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from orchestrator import sim
from orchestrator.inventory import load_inventory
from orchestrator.transfer import PushOptions, Target, build_items, push, source_files
from orchestrator.transfer.node_receiver import HashCache

DEST = "/opt/orchestrate-node/bench-push"
# The cipher preference push's bulk streams use on CPUs with AES instructions (transport/openssh.py),
# for a baseline that differs from push only in what push adds.
PUSH_CIPHERS = ["-o", "Ciphers=aes128-gcm@openssh.com,chacha20-poly1305@openssh.com"]


def make_checkpoint(folder: Path, size_mb: int) -> Path:
    path = folder / "rank_0" / "iflytekspark_13b.ckpt"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1 << 20))
    return path


def clean(cluster: sim.Cluster, count: int) -> None:
    for k in range(1, count + 1):
        cluster.exec(k, f"rm -rf {DEST} && mkdir -p {DEST}")


def _ssh_options(cluster: sim.Cluster) -> list[str]:
    return ["-i", str(cluster.key), "-o", f"UserKnownHostsFile={cluster.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]  # fmt: skip


def scp_sequential(cluster: sim.Cluster, hosts: list[str], path: Path) -> float:
    start = time.perf_counter()
    for host in hosts:
        subprocess.run(["scp", "-q", *_ssh_options(cluster), str(path), f"root@{host}:{DEST}/"], check=True)
    return time.perf_counter() - start


def cat_sequential(cluster: sim.Cluster, hosts: list[str], path: Path, cipher: list[str]) -> float:
    """``ssh host 'cat > file' < file`` to each host in turn: the bare cost of moving the bytes."""
    start = time.perf_counter()
    for host in hosts:
        with open(path, "rb") as src:
            subprocess.run(["ssh", *_ssh_options(cluster), *cipher, f"root@{host}", f"cat > {DEST}/{path.name}"],
                           stdin=src, check=True)  # fmt: skip
    return time.perf_counter() - start


def timed_push(targets: list[Target], mode: str) -> tuple[float, int]:
    start = time.perf_counter()
    result = push(targets, PushOptions(mode=mode)).check()
    return time.perf_counter() - start, result.controller_bytes


def one_round(cluster: sim.Cluster, targets: list[Target], ckpt: Path, direct: bool) -> dict:
    count = len(targets)
    hosts = [t.host for t in targets]
    clean(cluster, count)
    row = {"nodes": count, "scp_s": scp_sequential(cluster, hosts, ckpt)}
    clean(cluster, count)
    row["cat_s"] = cat_sequential(cluster, hosts, ckpt, [])
    clean(cluster, count)
    row["cat_push_cipher_s"] = cat_sequential(cluster, hosts, ckpt, PUSH_CIPHERS)
    clean(cluster, count)
    row["push_s"], row["controller_bytes"] = timed_push(targets, "auto")
    row["repush_s"], _ = timed_push(targets, "auto")
    if direct:
        clean(cluster, count)
        row["direct_s"], _ = timed_push(targets, "direct")
    clean(cluster, count)
    return row


def best(rows: list[dict]) -> dict:
    """Each timing's minimum over the rounds (other fields from the first round)."""
    return {k: min(r[k] for r in rows) if k.endswith("_s") else v for k, v in rows[0].items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--nodes", default="1,2,4,8")
    ap.add_argument("--repeat", type=int, default=1, help="rounds per node count (best time kept)")
    ap.add_argument("--direct", action="store_true", help="also time direct (non-relay) pushes")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    counts = [int(c) for c in args.nodes.split(",")]
    name = f"bpush{os.getpid() % 10000}"
    cluster = sim.up(name, nodes=max(counts), devices=1)
    rows = []
    try:
        inv = load_inventory(cluster.inventory)
        with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
            ckpt = make_checkpoint(Path(tmp), args.size_mb)
            cache = HashCache(str(Path(tmp) / "hashes.json"))
            start = time.perf_counter()
            items = tuple(build_items(source_files(ckpt), cache))
            hash_s = time.perf_counter() - start
            for count in counts:
                targets = [Target(n, DEST, items) for n in inv.nodes[:count]]
                rounds = [one_round(cluster, targets, ckpt, args.direct) for _ in range(args.repeat)]
                rows.append(best(rounds))
                print(_line(rows[-1], args.size_mb), flush=True)
    finally:
        sim.down(name)
    load = os.getloadavg()[1]  # the nodes share this machine's CPUs and disk: say how busy it was
    summary = {
        "size_mb": args.size_mb,
        "controller_first_hash_s": round(hash_s, 2),
        "load_5min": load,
        "runs": rows,
    }
    text = f"controller first hash: {hash_s:.2f}s (cached after); machine load (5 min) {load:.1f}"
    print(json.dumps(summary, indent=1) if args.json else text)


def _line(row: dict, size_mb: int) -> str:
    total = size_mb * row["nodes"]
    text = (f"{row['nodes']} node(s): scp {row['scp_s']:.2f}s  ssh cat {row['cat_s']:.2f}s  "
            f"ssh cat (push's cipher) {row['cat_push_cipher_s']:.2f}s  "
            f"push {row['push_s']:.2f}s ({total / row['push_s']:.0f} MB/s, controller sent "
            f"{row['controller_bytes'] / (1 << 20):.0f} MiB)  push/cat {row['push_s'] / row['cat_s']:.2f}  "
            f"push/cat(same cipher) {row['push_s'] / row['cat_push_cipher_s']:.2f}  "
            f"scp/push {row['scp_s'] / row['push_s']:.2f}x  re-push {row['repush_s']:.2f}s")  # fmt: skip
    if "direct_s" in row:
        text += f"  direct {row['direct_s']:.1f}s"
    return text


if __name__ == "__main__":
    main()
