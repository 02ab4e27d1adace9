"""A stand-in "rank" for agent tests: sleeps, prints MindFormers-style loss lines, exits as told.

Also importable: ``mf_loss_lines`` builds the two lines MindFormers' MFLossMonitor.print_output_info
logs per step, with the same %-formats and the stdout logger prefix of mindformers/tools/logger.py.
"""

# ruff: noqa: UP031  (the %-formats are MindFormers' own, kept verbatim on purpose)
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from typing import List, Optional

PREFIX = "2026-11-28 04:00:00,123 - mindformers[mindformers/core/callback/callback.py:553] - INFO - "


def mf_loss_lines(
    epoch: int,
    epochs: int,
    step: int,
    steps: int,
    loss: float,
    per_step_ms: float,
    *,
    lr: Optional[str] = "1e-05",
    sink: bool = True,
    mean_loss: float = 0.0,
    throughput_t: Optional[float] = None,
    throughput: float = 12.5,
    time_remain: float = 12.0,
) -> List[str]:
    """The step line and the progress-bar line, formatted exactly as MFLossMonitor does."""
    loss_info = "loss: %5.6f, " % loss if sink else "loss:[%5.6f/%5.6f], " % (loss, mean_loss)
    tput = ", train_throughput_per_npu: %.3fT" % throughput_t if throughput_t is not None else ""
    head = "{ Epoch:[%3d/%3d], step:[%5d/%5d], " + loss_info
    if lr is not None:
        fmt = head + "per_step_time: %dms, lr: %s, overflow cond: %s, loss_scale: %s, global_norm: %s%s"
        step_line = fmt % (epoch, epochs, step, steps, int(per_step_ms), lr, "False", 1.0, "[1.2345]", tput)
    else:
        fmt = head + "per_step_time: %dms, overflow cond: %s, loss_scale: %s, global_norm: %s%s"
        step_line = fmt % (epoch, epochs, step, steps, int(per_step_ms), "False", 1.0, "[1.2345]", tput)
    percent = ((epoch - 1) * steps + step) / epochs / steps * 100
    bar = ("|%%-%ds|" % 50) % (int(50 * percent / 100) * "█")
    bar_line = "  %4.1f%% %s %.5f samples/s/p  %s }" % (
        percent,
        bar,
        throughput,
        timedelta(seconds=int(time_remain)),
    )
    return [PREFIX + step_line, PREFIX + bar_line]


def claim(npu: int, pid: Optional[int] = None, name: str = "python") -> None:
    """Make the fake npu-smi list ``pid`` (this process) on ``npu`` (claims folder: $FAKE_NPU_CLAIMS)."""
    pid = pid or os.getpid()
    with open(os.path.join(os.environ["FAKE_NPU_CLAIMS"], f"{pid}-{npu}.json"), "w") as f:
        json.dump({"pid": pid, "npu": npu, "name": name}, f)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sleep", type=float, default=0.0, help="seconds to run before exiting")
    ap.add_argument("--exit", type=int, default=0, help="exit code")
    ap.add_argument("--steps", type=int, default=0, help="loss lines to print first")
    ap.add_argument("--ignore-term", action="store_true")
    ap.add_argument("--grandchild", help="spawn a sleeping grandchild and write its pid to this file")
    ap.add_argument("--ready", help="touch this file once set up")
    ap.add_argument("--claim-npu", type=int, action="append", default=[],
                    help="hold this NPU in the fake npu-smi (tests/agent/fake_npu_smi.py)")  # fmt: skip
    ap.add_argument("--env-out", help="write DEVICE_ID and argv here as JSON")
    ap.add_argument("--device_id", help="as MindFormers' run script takes it (recorded by --env-out)")
    args = ap.parse_args()
    for npu in args.claim_npu:
        claim(npu)
    if args.env_out:
        with open(args.env_out, "w") as f:
            json.dump({"DEVICE_ID": os.environ.get("DEVICE_ID"), "argv": sys.argv[1:]}, f)
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.grandchild:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        with open(args.grandchild, "w") as f:
            f.write(str(child.pid))
    rank = os.environ.get("ORCHESTRATE_RANK", "?")
    print(f"rank {rank} starting", flush=True)
    for s in range(1, args.steps + 1):
        for line in mf_loss_lines(1, 1, s, args.steps, 10.0 - s, 250.0, throughput=8.0):
            print(line, flush=True)
    if args.ready:
        open(args.ready, "w").close()
    time.sleep(args.sleep)
    print(f"rank {rank} exiting with {args.exit}", flush=True)
    sys.exit(args.exit)


if __name__ == "__main__":
    main()
