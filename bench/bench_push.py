"""`orchestrate push` of one checkpoint to 1, 8 and 32 simulated nodes, on unlimited and on limited links,
against plain OpenSSH copies.

For each link setting (``--links``: ``none`` and/or rates such as ``200mbit``; a limited cluster has
that bandwidth on every node link, both ways, and on the controller's uplink: ``sim up --link-rate``)
one simulated cluster of the largest size (1 NPU a node, real sshd, host keys checked by every tool)
is built, and for each node count one checkpoint file is pushed with ``push`` (relay chain) and then
pushed again unchanged (``re-push``). Up to ``--baseline-nodes`` nodes, the plain copies run too:
``scp`` to each node one after another (the baseline: the tool people use), and ``ssh host 'cat >
file'`` with OpenSSH's default cipher and with push's (the bare cost of moving the bytes). Every tool
writes as the nodes' job user (the one push uses), into a folder emptied before each case. ``ssh cat +
fsync + sha256`` adds what push's receiver does besides moving the bytes (make them durable, hash them
once with OpenSSL's sha256): where the copy alone fills the machine's cores, that is push's floor.
Each repeat runs every case once (order rotating); medians reported.

``extra`` has, per link setting: the push time of N nodes over that of one node (``push_vs_one_node``),
one node's push over ``ssh cat`` with push's cipher (``push_vs_ssh_cat``; ``_fsync``, ``_fsync_sha256``:
over the other two plain copies), the re-push over the push
(``repush_fraction``), and the bytes the controller sent (the relay sends them once).

Run: ``.venv/bin/python bench/bench_push.py [--links none,200mbit] [--size-mb 1024]
[--limited-size-mb 256] [--nodes 1,8,32] [--baseline-nodes 1] [--repeats 3] [--json]`` (root).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from harness import Measured, Report, Seconds, arguments, interleave, log, stdout_to_stderr

from orchestrator import sim
from orchestrator.inventory import load_inventory
from orchestrator.sim import links
from orchestrator.transfer import PushOptions, Target, build_items, push, source_files
from orchestrator.transfer.node_store import HashCache

DEST = "/opt/orchestrate-node/bench-push"
# The cipher preference push's bulk streams use on CPUs with AES instructions (transport/openssh.py),
# for a baseline that differs from push only in what push adds.
PUSH_CIPHERS = ["-o", "Ciphers=aes128-gcm@openssh.com,chacha20-poly1305@openssh.com"]
BASELINE = "scp"
CAT = "ssh cat (push's cipher)"
CAT_SYNC = "ssh cat + fsync (push's cipher)"
CAT_CHECK = "ssh cat + fsync + sha256 (push's cipher)"


def make_checkpoint(folder: Path, size_mb: int) -> Path:
    path = folder / "rank_0" / "iflytekspark_13b.ckpt"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1 << 20))
    return path


def clean(cluster: sim.Cluster, count: int) -> None:
    """An empty DEST owned by the job user on the first ``count`` nodes (every tool writes as that user)."""
    for k in range(1, count + 1):
        cluster.exec(k, f"rm -rf {DEST} && mkdir -p {DEST} && chown {cluster.user}: {DEST}")


def _ssh_options(cluster: sim.Cluster) -> list[str]:
    return ["-i", str(cluster.key), "-o", f"UserKnownHostsFile={cluster.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]  # fmt: skip


def scp_sequential(cluster: sim.Cluster, hosts: list[str], path: Path) -> float:
    start = time.perf_counter()
    for host in hosts:
        subprocess.run(
            ["scp", "-q", *_ssh_options(cluster), str(path), f"{cluster.user}@{host}:{DEST}/"], check=True
        )
    return time.perf_counter() - start


def cat_sequential(
    cluster: sim.Cluster, hosts: list[str], path: Path, cipher: list[str], sync: bool = False,
    check: bool = False,
) -> float:  # fmt: skip
    """``ssh host 'cat > file' < file`` to each host in turn: the bare cost of moving the bytes (with
    ``sync``: and of making them durable, ``sync FILE`` = fsync, as push does; with ``check``: and of
    hashing them once, ``openssl dgst -sha256``, the OpenSSL sha256 push's receiver verifies with)."""
    start = time.perf_counter()
    target = f"{DEST}/{path.name}"
    command = f"cat > {target}" + (f" && sync {target}" if sync or check else "")
    command += f" && openssl dgst -sha256 {target} >/dev/null" if check else ""
    for host in hosts:
        with open(path, "rb") as src:
            subprocess.run(["ssh", *_ssh_options(cluster), *cipher, f"{cluster.user}@{host}", command],
                           stdin=src, check=True)  # fmt: skip
    return time.perf_counter() - start


def timed_push(targets: list[Target]) -> tuple[float, int]:
    start = time.perf_counter()
    result = push(targets, PushOptions(mode="auto")).check()
    return time.perf_counter() - start, result.controller_bytes


def cases(
    cluster: sim.Cluster, targets: list[Target], ckpt: Path, group: str, baselines: bool, sent: dict
) -> list:
    """Every tool's case for ``len(targets)`` nodes; each starts from empty node folders."""
    count, hosts = len(targets), [t.host for t in targets]

    def fresh(fn):
        def case():
            clean(cluster, count)
            return fn()

        return case

    def pushed() -> Measured:
        took, sent[group] = timed_push(targets)
        again, _ = timed_push(targets)
        return Measured({(group, "push"): took, (group, "re-push (unchanged)"): again})

    out = [((group, "push"), fresh(pushed))]
    if baselines:
        out += [((group, BASELINE), fresh(lambda: Seconds(scp_sequential(cluster, hosts, ckpt)))),
                ((group, "ssh cat"), fresh(lambda: Seconds(cat_sequential(cluster, hosts, ckpt, [])))),
                ((group, CAT), fresh(lambda: Seconds(cat_sequential(cluster, hosts, ckpt, PUSH_CIPHERS)))),
                ((group, CAT_SYNC), fresh(lambda: Seconds(cat_sequential(cluster, hosts, ckpt, PUSH_CIPHERS, True)))),
                ((group, CAT_CHECK), fresh(lambda: Seconds(cat_sequential(cluster, hosts, ckpt, PUSH_CIPHERS, check=True))))]  # fmt: skip
    return out


def _median(report: Report, group: str, case: str) -> float | None:
    values = report.samples.get((group, case))
    return statistics.median(values) if values else None


def summarize(report: Report, label: str, groups: dict[int, str]) -> None:
    """The figures the push's goals are stated in, per link setting (into ``extra`` and ``notes``)."""
    one = _median(report, groups[min(groups)], "push")
    growth = {str(c): round(_median(report, g, "push") / one, 3) for c, g in groups.items() if one}
    repush = {str(c): round(_median(report, g, "re-push (unchanged)") / _median(report, g, "push"), 4)
              for c, g in groups.items()}  # fmt: skip
    first = groups[min(groups)]
    cat, cat_sync, cat_check = (_median(report, first, c) for c in (CAT, CAT_SYNC, CAT_CHECK))
    report.extra.setdefault("push_vs_one_node", {})[label] = growth
    report.extra.setdefault("repush_fraction", {})[label] = repush
    if cat and one:
        report.extra.setdefault("push_vs_ssh_cat", {})[label] = round(one / cat, 3)
    if cat_sync and one:
        report.extra.setdefault("push_vs_ssh_cat_fsync", {})[label] = round(one / cat_sync, 3)
    if cat_check and one:
        report.extra.setdefault("push_vs_ssh_cat_fsync_sha256", {})[label] = round(one / cat_check, 3)
    report.notes.append(f"{label}: push N nodes / 1 node: " + ", ".join(f"{c}: {r:.2f}x" for c, r in growth.items())
                        + (f"; 1-node push / {CAT}: {one / cat:.2f}x" if cat and one else "")
                        + (f", / {CAT_SYNC}: {one / cat_sync:.2f}x" if cat_sync and one else "")
                        + (f", / {CAT_CHECK}: {one / cat_check:.2f}x" if cat_check and one else "")
                        + "; re-push / push: " + ", ".join(f"{c}: {100 * r:.1f}%" for c, r in repush.items()))  # fmt: skip


def run_links(report: Report, label: str, limits, counts: list[int], size_mb: int, args, sent: dict) -> None:
    name = f"bpush{os.getpid() % 10000}"
    log(f"{label}: building a {max(counts)}-node simulated cluster {name} ...")
    cluster = sim.up(name, nodes=max(counts), devices=1, limits=limits)
    try:
        inv = load_inventory(cluster.inventory)
        with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
            ckpt = make_checkpoint(Path(tmp), size_mb)
            start = time.perf_counter()
            items = tuple(build_items(source_files(ckpt), HashCache(str(Path(tmp) / "hashes.json"))))
            report.extra.setdefault("controller_first_hash_s", {})[label] = round(
                time.perf_counter() - start, 3
            )
            groups = {}
            for count in counts:
                group = groups[count] = f"{label}, {size_mb} MiB: {count} node{'s' if count > 1 else ''}"
                targets = [Target(n, DEST, items) for n in inv.nodes[:count]]
                baselines = count <= args.baseline_nodes
                samples = interleave(cases(cluster, targets, ckpt, group, baselines, sent), args.repeats)
                clean(cluster, count)
                report.add(samples, BASELINE if baselines else "push")
                for key in samples:
                    if "re-push" not in key[1]:
                        report.rate(key, size_mb * count, "MB")
                log(f"  {group} done")
            summarize(report, label, groups)
    finally:
        sim.down(name)


def main(argv=None) -> None:
    ap = arguments(__doc__, repeats=3, alias="--repeat")
    ap.add_argument(
        "--links", default="none,200mbit", help="link settings: none and/or rates (200mbit, 1gbit)"
    )
    ap.add_argument("--size-mb", type=int, default=1024, help="checkpoint size on unlimited links")
    ap.add_argument("--limited-size-mb", type=int, default=256, help="checkpoint size on limited links")
    ap.add_argument("--nodes", default="1,8,32")
    ap.add_argument("--baseline-nodes", type=int, default=1, help="run scp/ssh cat up to this many nodes")
    args = ap.parse_args(argv)
    counts = sorted(int(c) for c in args.nodes.split(","))
    settings = [s.strip() for s in args.links.split(",") if s.strip()]
    report = Report("bench_push", f"{BASELINE} (one node after another)", args.repeats, "speedup",
                    dict(size_mb=args.size_mb, limited_size_mb=args.limited_size_mb, files=1, links=settings,
                         devices_per_node=1))  # fmt: skip
    if os.geteuid() != 0:
        report.skip("the simulated cluster needs root")
        report.emit(args.json)
        return
    sent: dict[str, int] = {}
    with stdout_to_stderr(args.json):
        for setting in settings:
            limits = None if setting == "none" else links.limits_from(setting, None)
            label = "unlimited" if limits is None else f"{limits.rate_bps / 1e6:g} Mbit/s links"
            size = args.size_mb if limits is None else args.limited_size_mb
            run_links(report, label, limits, counts, size, args, sent)
    report.extra["controller_bytes"] = sent  # relay: the bytes once per push
    report.emit(args.json)


if __name__ == "__main__":
    main()
