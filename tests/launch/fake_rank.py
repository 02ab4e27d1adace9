"""A stand-in rank for launch tests: prints MindFormers-style loss lines, saves a "checkpoint", exits.

``--fail-at STEP --code N`` exits N at that step. The dynamic-cluster scheduler (MS_ROLE=MS_SCHED) just
lives as long as the workers would. SIGTERM ends it with 143, as MindSpore's peers do.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--step-s", type=float, default=0.2)
    ap.add_argument("--fail-at", type=int, default=0)
    ap.add_argument("--code", type=int, default=1)
    ap.add_argument("--out", default="output/checkpoint")
    a = ap.parse_args()
    if os.environ.get("MS_ROLE") == "MS_SCHED":
        time.sleep(a.steps * a.step_s + 1.0)
        return 0
    rank = int(os.environ.get("RANK_ID", "0"))
    print(f"rank {rank} of {os.environ.get('RANK_SIZE')} starting", flush=True)
    for step in range(1, a.steps + 1):
        time.sleep(a.step_s)
        if step == a.fail_at:
            print(f"RuntimeError: rank {rank} broke at step {step}", flush=True)
            return a.code
        left = (a.steps - step) * a.step_s
        print(
            f"- INFO - {{ Epoch:[  1/  1], step:[{step:5d}/{a.steps:5d}], loss: {10.0 / step:5.6f}, "
            f"per_step_time: {int(a.step_s * 1000)}ms, lr: 1e-05, overflow cond: False, loss_scale: 1.0, "
            f"global_norm: [1.0]",
            flush=True,
        )
        print(
            f"- INFO -   {100.0 * step / a.steps:4.1f}% |#####| 4.00000 samples/s/p  0:00:{int(left):02d} }}",
            flush=True,
        )
    folder = os.path.join(a.out, f"rank_{rank}")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"fake_rank_{rank}-{a.steps}_1.ckpt"), "w") as f:
        f.write("weights\n")
    print(f"rank {rank} done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
