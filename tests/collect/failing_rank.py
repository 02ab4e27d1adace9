"""A stand-in rank for the collect-logs cluster test: MindFormers loss lines, a CANN-style plog, then
rank ``--fail-rank`` raises at step ``--fail-at`` (exit 3) while the others run on until stopped (143).
The dynamic-cluster scheduler (MS_ROLE=MS_SCHED) only waits."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def write_plog(rank: int) -> None:
    """A plog file where CANN would put it: $ASCEND_PROCESS_LOG_PATH/plog/plog-<pid>_<time>.log."""
    folder = os.path.join(os.environ["ASCEND_PROCESS_LOG_PATH"], "plog")
    os.makedirs(folder, exist_ok=True)
    name = f"plog-{os.getpid()}_{time.strftime('%Y%m%d%H%M%S')}.log"
    with open(os.path.join(folder, name), "w") as f:
        f.write(f"[INFO] HCCL(rank {rank}): init ok\n[ERROR] HCCL(rank {rank}): EI0006 stand-in\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fail-rank", type=int, default=1)
    ap.add_argument("--fail-at", type=int, default=4)
    ap.add_argument("--steps", type=int, default=600)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.environ.get("MS_ROLE") == "MS_SCHED":
        time.sleep(120)
        return 0
    rank = int(os.environ["RANK_ID"])
    write_plog(rank)
    for step in range(1, a.steps + 1):
        time.sleep(0.1)
        if rank == a.fail_rank and step == a.fail_at:
            print("Traceback (most recent call last):", flush=True)
            print('  File "run.py", line 1, in <module>', flush=True)
            print(f"RuntimeError: rank {rank} ran out of device memory at step {step}", flush=True)
            return 3
        print(f"- INFO - {{ Epoch:[  1/  1], step:[{step:5d}/{a.steps:5d}], loss: {8.0 / (1 + 0.3 * step) + 0.01 * rank:5.6f}, "
              f"per_step_time: 100ms, lr: 1e-05, overflow cond: False, loss_scale: 1.0, global_norm: [1.0]", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
