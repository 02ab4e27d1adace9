"""Rank table and npu-smi parser speed, as ratios against a named baseline in one run.

- rank table: build + check + JSON for N nodes of 8 NPUs, against the stock approach (per-node dicts
  concatenated in argument order and dumped, no ordering and no checks: `merge_hccl.py`'s algorithm).
- npu-smi: parse_npu_smi_info on the 8-NPU capture, against only splitting the text into cells.

Run: ``.venv/bin/python bench/bench_ranktable.py``. Best of 5 runs each.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from orchestrator.ascend import parse_npu_smi_info
from orchestrator.inventory.profiles import get_profile
from orchestrator.ranktable import NodeDevices, build_rank_table, check_rank_table, rank_table_json

REPO = Path(__file__).resolve().parents[1]
CAPTURE = REPO.parent / "shared" / "fixtures" / "ascend" / "npu-smi_info_910B2_25.2.0_8npu_procs.txt"
PROFILE = get_profile("atlas-800t-a2-64g")


def best(fn, *args, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def nodes(count: int) -> list[NodeDevices]:
    return [
        NodeDevices(
            f"10.{k // 250}.{k % 250}.1",
            tuple((d, f"172.{16 + k // 250}.{k % 250}.{d + 1}") for d in range(8)),
        )
        for k in range(count)
    ]


def ours(ns: list[NodeDevices]) -> str:
    table = build_rank_table(ns)
    assert not check_rank_table(table, PROFILE, "bench")
    return rank_table_json(table)


def stock_like(ns: list[NodeDevices]) -> str:
    servers, rank = [], 0
    for n in ns:
        devices = []
        for dev, ip in n.devices:
            devices.append({"device_id": str(dev), "device_ip": ip, "rank_id": str(rank)})
            rank += 1
        servers.append({"server_id": n.server_id, "device": devices, "host_nic_ip": "reserve"})
    return json.dumps(
        {"version": "1.0", "server_count": str(len(ns)), "server_list": servers, "status": "completed"},
        indent=4,
    )


def split_only(text: str) -> int:
    return sum(len(line.split("|")) for line in text.splitlines())


def main() -> None:
    print(f"{'case':<34}{'ours ms':>10}{'baseline ms':>13}{'ratio':>8}")
    for count in (2, 8, 64, 512):
        ns = nodes(count)
        a, b = best(ours, ns), best(stock_like, ns)
        print(
            f"{f'rank table, {count} nodes (stock merge)':<34}{a * 1e3:>10.2f}{b * 1e3:>13.2f}{a / b:>8.1f}"
        )
    if CAPTURE.is_file():
        text = CAPTURE.read_text()
        a = best(lambda: [parse_npu_smi_info(text) for _ in range(100)])
        b = best(lambda: [split_only(text) for _ in range(100)])
        print(f"{'npu-smi info x100 (split only)':<34}{a * 1e3:>10.2f}{b * 1e3:>13.2f}{a / b:>8.1f}")


if __name__ == "__main__":
    main()
