"""Rank table and npu-smi parser speed, as ratios against named baselines in one run.

- rank table: build + check + JSON for N nodes of 8 NPUs, against the stock approach (per-node dicts
  concatenated in argument order and dumped, no ordering and no checks: `merge_hccl.py`'s algorithm),
  the least work that still yields a rank table: the ratio is the price of ordering and checking.
- npu-smi: parse_npu_smi_info on the 8-NPU capture (tests/fixtures/ascend_captures/), against only
  splitting the text into cells: the least work that reads the table.
Every sample is seconds per call (calls repeated to last about 50 ms); each repeat runs every case once,
order rotating; ratio = time / baseline time.

Run: ``.venv/bin/python bench/bench_ranktable.py [--repeats 7] [--nodes 2,8,64,512] [--json]``.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness import Report, arguments, interleave, log, per_call

from orchestrator.ascend import parse_npu_smi_info
from orchestrator.inventory.profiles import get_profile
from orchestrator.ranktable import NodeDevices, build_rank_table, check_rank_table, rank_table_json

REPO = Path(__file__).resolve().parents[1]
CAPTURE = REPO / "tests" / "fixtures" / "ascend_captures" / "npu-smi_info_910B2_25.2.0_8npu_procs.txt"
PROFILE = get_profile("atlas-800t-a2-64g")
STOCK, SPLIT = "stock merge", "split only"


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


def main(argv=None) -> None:
    parser = arguments(__doc__, repeats=7)
    parser.add_argument("--nodes", default="2,8,64,512", help="node counts of the rank tables")
    args = parser.parse_args(argv)
    report = Report("bench_ranktable", f"{STOCK} (rank tables), {SPLIT} (npu-smi)", args.repeats, "time",
                    dict(npus_per_node=8, profile=PROFILE.name, capture=CAPTURE.name))  # fmt: skip
    log("calibrating ...")
    for count in (int(c) for c in args.nodes.split(",")):
        ns = nodes(count)
        group = f"rank table, {count} nodes"
        cases = [((group, STOCK), per_call(lambda ns=ns: stock_like(ns))),
                 ((group, "build + check + JSON"), per_call(lambda ns=ns: ours(ns)))]  # fmt: skip
        report.add(interleave(cases, args.repeats), baseline=STOCK)
    if CAPTURE.is_file():
        text = CAPTURE.read_text()
        cases = [(("npu-smi info", SPLIT), per_call(lambda: split_only(text))),
                 (("npu-smi info", "parse_npu_smi_info"), per_call(lambda: parse_npu_smi_info(text)))]  # fmt: skip
        report.add(interleave(cases, args.repeats), baseline=SPLIT)
    else:
        report.notes.append(f"npu-smi: no capture at {CAPTURE}, not measured")
    report.emit(args.json)


if __name__ == "__main__":
    main()
