"""The controller's peak memory while it pushes and collects several GiB: it must not grow with the size.

On one simulated node (real sshd), for each size (``--sizes-mb``): ``push`` sends one file of that size
(hashed first, as a new checkpoint is), and ``collect`` fetches a folder of that many MiB of
incompressible 64 MiB log files through collect-logs' node packer (``gather.fetch_node``, cap raised
above the size), streamed to a file on the controller and unpacked. Each operation runs in a fresh
child process, which reports its peak RSS (``ru_maxrss``) and the seconds the operation took.

**Baseline: the smallest size** (ratio kind ``time``: how the time grows with the size; linear is
size / smallest). ``extra.peak_rss_mib`` is the figure that matters: per operation and size, the
child's peak RSS, which stays flat (the Python interpreter and libraries) when nothing is held whole.

Run: ``.venv/bin/python bench/bench_collect.py [--sizes-mb 512,1024,2048] [--repeats 1] [--json]`` (root).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import Measured, Report, arguments, interleave, log, stdout_to_stderr

NODE_DIR = "/opt/orchestrate-node/bench-collect"
FILE_MB = 64


def child(op: str, cluster_name: str, size_mb: int, source: str) -> dict:
    """Run one operation in this (fresh) process; its seconds and peak RSS."""
    from orchestrator import sim
    from orchestrator.collect import gather
    from orchestrator.inventory import load_inventory
    from orchestrator.transfer import PushOptions, Target, build_items, push, source_files
    from orchestrator.transfer.node_store import HashCache
    from orchestrator.transport import connect

    cluster = sim.open_cluster(cluster_name)
    node = load_inventory(cluster.inventory).nodes[0]
    start = time.perf_counter()
    if op == "push":
        items = tuple(build_items(source_files(Path(source)), HashCache(None)))
        push([Target(node, f"{NODE_DIR}/pushed", items)], PushOptions(mode="direct")).check()
        got = size_mb << 20
    else:
        request = {"entries": [{"arc": "logs", "path": f"{NODE_DIR}/logs"}], "commands": [],
                   "max_file_bytes": FILE_MB << 20, "max_total_bytes": (size_mb + FILE_MB) << 20}  # fmt: skip
        t = connect(node, lazy=True)  # the archive streams through the OpenSSH client
        try:
            c = gather.fetch_node(t, node.python, request, Path(source) / "out" / node.host)
        finally:
            t.close()
        assert c.ok and not c.left_out, c
        got = c.archive_bytes
    took = time.perf_counter() - start
    return {"seconds": took, "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "bytes": got}


def run_child(op: str, cluster_name: str, size_mb: int, source: str) -> dict:
    argv = [sys.executable, __file__, "--child", op, cluster_name, str(size_mb), source]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{op} {size_mb} MiB failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = arguments(__doc__, repeats=1)
    ap.add_argument("--sizes-mb", default="512,1024,2048")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes_mb.split(","))
    report = Report(
        "bench_collect", f"{sizes[0]} MiB", args.repeats, "time", dict(sizes_mb=sizes, file_mb=FILE_MB)
    )
    if os.geteuid() != 0:
        report.skip("the simulated cluster needs root")
        report.emit(args.json)
        return
    from orchestrator import sim

    name = f"bcoll{os.getpid() % 10000}"
    rss: dict = {"push": {}, "collect": {}}
    with stdout_to_stderr(args.json), tempfile.TemporaryDirectory(prefix="bench-collect-") as tmp:
        log(f"building a 1-node simulated cluster {name} ...")
        cluster = sim.up(name, nodes=1, devices=1)
        try:
            user = cluster.user
            for size in sizes:
                src = Path(tmp) / f"ckpt-{size}.bin"
                with open(src, "wb") as f:
                    for _ in range(size):
                        f.write(os.urandom(1 << 20))

                def push_case(size=size, src=src):
                    cluster.exec(1, f"rm -rf {NODE_DIR}/pushed")
                    got = run_child("push", name, size, str(src))
                    rss["push"].setdefault(str(size), []).append(round(got["peak_rss_kib"] / 1024, 1))
                    return Measured({("push", f"{size} MiB"): got["seconds"]})

                def collect_case(size=size):
                    files = size // FILE_MB
                    cluster.exec(1, f"rm -rf {NODE_DIR}/logs && mkdir -p {NODE_DIR}/logs && cd {NODE_DIR}/logs && "
                                    f"for i in $(seq {files}); do head -c {FILE_MB << 20} /dev/urandom > rank-$i.log; done && "
                                    f"chown -R {user}: {NODE_DIR}", timeout=600)  # fmt: skip
                    out = Path(tmp) / "collect"
                    got = run_child("collect", name, size, str(out))
                    subprocess.run(["rm", "-rf", str(out)], check=True)
                    rss["collect"].setdefault(str(size), []).append(round(got["peak_rss_kib"] / 1024, 1))
                    return Measured({("collect", f"{size} MiB"): got["seconds"]})

                samples = interleave([(("push", f"{size} MiB"), push_case), (("collect", f"{size} MiB"), collect_case)],
                                     args.repeats)  # fmt: skip
                for key, values in samples.items():
                    report.add({key: values}, f"{sizes[0]} MiB")
                    report.rate(key, size, "MB")
                src.unlink()
                cluster.exec(1, f"rm -rf {NODE_DIR}")
                log(f"  {size} MiB done")
        finally:
            sim.down(name)
    report.extra["peak_rss_mib"] = rss
    report.notes.append("controller peak RSS (MiB): " + "; ".join(
        f"{op} " + ", ".join(f"{s} MiB: {max(v):.0f}" for s, v in by.items()) for op, by in rss.items()))  # fmt: skip
    report.emit(args.json)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])))
    else:
        main()
