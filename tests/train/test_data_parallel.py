"""Data-parallel training with 2 ranks through MindSpore's dynamic cluster on CPU: a scheduler and two
workers as local processes with the MS_* environment, as the launcher starts them. Ranks end identical."""

from __future__ import annotations

import socket
import subprocess
import time

import numpy as np
import pytest

from tests.fixtures.train import RunResult, run_entry, tiny_run_yaml

pytestmark = pytest.mark.mindspore


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def finish(proc: subprocess.Popen, deadline: float) -> str:
    """The process's output; a process still running at ``deadline`` is killed (its output kept)."""
    try:
        return proc.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0] + "\n[killed: still running at the test's deadline]"


def test_two_ranks_train_on_their_shards_and_end_with_identical_weights(tmp_path, pretrain_mindrecord):
    import mindspore as ms

    cfg = tiny_run_yaml(pretrain_mindrecord, epochs=1, save_checkpoint_steps=5)
    cfg["parallel_config"]["data_parallel"] = 2
    common = {
        "MS_SCHED_HOST": "127.0.0.1",
        "MS_SCHED_PORT": str(free_port()),
        "MS_WORKER_NUM": "2",
        "MS_TOPO_TIMEOUT": "300",
        # a loaded 2-core machine can starve the heartbeat threads past MindSpore's 30 s default
        "MS_NODE_TIMEOUT": "300",
        "MS_RECEIVE_MSG_TIMEOUT": "300",
    }
    roles = {"sched": {"MS_ROLE": "MS_SCHED"}}
    roles.update({f"rank{r}": {"MS_ROLE": "MS_WORKER", "MS_NODE_ID": str(r)} for r in (0, 1)})
    procs = {
        name: run_entry(tmp_path, cfg, "--use_parallel", "True", env={**common, **env}, wait=False)
        for name, env in roles.items()
    }
    deadline = time.monotonic() + 300
    outputs = {name: finish(p, deadline) for name, p in procs.items()}
    failed = [name for name, p in procs.items() if p.returncode != 0]
    assert not failed, "\n".join(
        f"--- {name} (exit {procs[name].returncode}):\n{outputs[name][-2500:]}" for name in procs
    )
    results = {
        name: RunResult(tmp_path, subprocess.CompletedProcess([], 0, out, ""))
        for name, out in outputs.items()
    }
    steps = results["rank0"].steps()
    assert steps and len(steps) == len(results["rank1"].steps())
    assert "parallel launch: dynamic_cluster, rank 1 of 2" in outputs["rank1"]
    last = [results["rank0"].checkpoints(rank)[-1] for rank in (0, 1)]
    a, b = (ms.load_checkpoint(str(p)) for p in last)
    names = [k for k in a if k.startswith("transformer.")]
    assert names and all(np.array_equal(a[k].asnumpy(), b[k].asnumpy()) for k in names)
    assert int(a["global_step"].asnumpy().reshape(-1)[0]) == len(steps)
