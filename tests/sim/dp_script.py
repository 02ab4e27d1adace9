"""A tiny MindSpore CPU data-parallel job: one Dense layer, data that differs per rank, a few steps.

Started once per worker with the dynamic-cluster environment (MS_ROLE, MS_SCHED_HOST, MS_SCHED_PORT,
MS_WORKER_NUM, MS_NODE_ID); the scheduler runs the same file with MS_ROLE=MS_SCHED. Each worker saves
its initial and final weights to ``<out>/rank<N>.npz``.
"""

from __future__ import annotations

import os
import sys

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn
from mindspore.communication import get_group_size, get_rank, init


def main(out_dir: str, steps: int = 4) -> None:
    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    init()  # "mccl" on the CPU backend; blocks until the scheduler has every worker
    if os.environ.get("MS_ROLE") == "MS_SCHED":
        return
    rank, world = get_rank(), get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
    init_w = np.linspace(-1.0, 1.0, 8, dtype=np.float32).reshape(2, 4)
    net = nn.Dense(4, 2, weight_init=Tensor(init_w), bias_init="zeros")
    train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.SGD(net.trainable_params(), 0.1))
    rng = np.random.default_rng(1000 + rank)  # every rank sees different data
    for _ in range(steps):
        x = rng.normal(size=(16, 4)).astype(np.float32)
        y = rng.normal(size=(16, 2)).astype(np.float32)
        train(Tensor(x), Tensor(y))
    os.makedirs(out_dir, exist_ok=True)
    np.savez(
        os.path.join(out_dir, f"rank{rank}.npz"),
        init_weight=init_w,
        weight=net.weight.asnumpy(),
        bias=net.bias.asnumpy(),
        world=world,
    )
    print(f"rank {rank}/{world} done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
