"""`orchestrate push` of one checkpoint to 1, 2, 4 and 8 simulated nodes, against plain OpenSSH copies.

In one run on one 8-node simulated cluster (real sshd, host keys checked by every tool), for each node
count: the baseline is `scp` of the same file to each node one after another (the sim's key and
known_hosts): the tool people use to copy a checkpoint, so the ratio is what push gains or costs. Also
measured: `ssh host 'cat > file' < file` (OpenSSH's default cipher, and the AES-GCM-first preference
push uses: the bare cost of moving the bytes), `push` (relay chain where nodes reach each other), the
re-push of the unchanged file, and with ``--direct`` a direct (non-relay) push. Each repeat runs every
tool once (order rotating; the node folders emptied before each); medians reported. The controller's
first hashing of the file is timed on its own (later pushes hit the hash cache).

Run: ``.venv/bin/python bench/bench_push.py [--size-mb 1024] [--nodes 1,2,4,8] [--repeats 3] [--direct]
[--json]`` (root).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from harness import Measured, Report, Seconds, arguments, interleave, log, stdout_to_stderr

from orchestrator import sim
from orchestrator.inventory import load_inventory
from orchestrator.transfer import PushOptions, Target, build_items, push, source_files
from orchestrator.transfer.node_receiver import HashCache

DEST = "/opt/orchestrate-node/bench-push"
# The cipher preference push's bulk streams use on CPUs with AES instructions (transport/openssh.py),
# for a baseline that differs from push only in what push adds.
PUSH_CIPHERS = ["-o", "Ciphers=aes128-gcm@openssh.com,chacha20-poly1305@openssh.com"]
BASELINE = "scp"


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


def cases(cluster: sim.Cluster, targets: list[Target], ckpt: Path, direct: bool, sent: dict) -> list:
    """Every tool's case for ``len(targets)`` nodes; each starts from empty node folders."""
    count, hosts = len(targets), [t.host for t in targets]
    group = f"{count} node{'s' if count > 1 else ''}"

    def fresh(fn):
        def case():
            clean(cluster, count)
            return fn()

        return case

    def pushed() -> Measured:
        took, sent[count] = timed_push(targets, "auto")
        again, _ = timed_push(targets, "auto")
        return Measured({(group, "push"): took, (group, "re-push (unchanged)"): again})

    out = [((group, BASELINE), fresh(lambda: Seconds(scp_sequential(cluster, hosts, ckpt)))),
           ((group, "ssh cat"), fresh(lambda: Seconds(cat_sequential(cluster, hosts, ckpt, [])))),
           ((group, "ssh cat (push's cipher)"), fresh(lambda: Seconds(cat_sequential(cluster, hosts, ckpt, PUSH_CIPHERS)))),
           ((group, "push"), fresh(pushed))]  # fmt: skip
    if direct:
        out.append(((group, "push --mode direct"), fresh(lambda: Seconds(timed_push(targets, "direct")[0]))))
    return out


def main(argv=None) -> None:
    ap = arguments(__doc__, repeats=3, alias="--repeat")
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--nodes", default="1,2,4,8")
    ap.add_argument("--direct", action="store_true", help="also time direct (non-relay) pushes")
    args = ap.parse_args(argv)
    counts = [int(c) for c in args.nodes.split(",")]
    report = Report("bench_push", f"{BASELINE} (one node after another)", args.repeats, "speedup",
                    dict(size_mb=args.size_mb, files=1))  # fmt: skip
    if os.geteuid() != 0:
        report.skip("the simulated cluster needs root")
        report.emit(args.json)
        return
    name = f"bpush{os.getpid() % 10000}"
    log(f"building a {max(counts)}-node simulated cluster {name} ...")
    cluster = sim.up(name, nodes=max(counts), devices=1)
    sent: dict[int, int] = {}
    try:
        inv = load_inventory(cluster.inventory)
        with stdout_to_stderr(args.json), tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
            ckpt = make_checkpoint(Path(tmp), args.size_mb)
            cache = HashCache(str(Path(tmp) / "hashes.json"))
            start = time.perf_counter()
            items = tuple(build_items(source_files(ckpt), cache))
            report.extra["controller_first_hash_s"] = round(time.perf_counter() - start, 3)
            for count in counts:
                targets = [Target(n, DEST, items) for n in inv.nodes[:count]]
                samples = interleave(cases(cluster, targets, ckpt, args.direct, sent), args.repeats)
                clean(cluster, count)
                report.add(samples, BASELINE)
                for key in samples:
                    if "re-push" not in key[1]:
                        report.rate(key, args.size_mb * count, "MB")
                log(f"  {count} node(s) done")
    finally:
        sim.down(name)
    report.extra["controller_bytes"] = {str(c): b for c, b in sent.items()}  # relay: the bytes once
    report.notes.append(f"controller sent (MiB): {', '.join(f'{c} nodes {b / (1 << 20):.0f}' for c, b in sent.items())}; "
                        f"first hash {report.extra['controller_first_hash_s']:.2f}s (cached after)")  # fmt: skip
    report.emit(args.json)


if __name__ == "__main__":
    main()
