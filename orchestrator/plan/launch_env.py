"""Environment and argv of every process of a job (docs/ascend-cluster.md §2).

Rank-table mode: RANK_TABLE_FILE, RANK_SIZE, RANK_ID, DEVICE_ID per NPU process. Dynamic cluster:
one scheduler (MS_ROLE=MS_SCHED) on the node holding rank 0, one worker per rank slot
(MS_ROLE=MS_WORKER, MS_NODE_ID=rank), all with MS_SCHED_HOST/PORT and MS_WORKER_NUM. Identity
variables always win over the inventory's env; the inventory's env wins over our defaults (so a
site can set e.g. HCCL_IF_IP or its own timeouts). ASCEND_RT_VISIBLE_DEVICES is never set: it would
renumber devices and break DEVICE_ID against the rank table.

Which NPU a rank binds: MindFormers 1.7 loads the YAML through its config template, which fills
``context.device_id: 0`` when the YAML has none, and then takes the config's device_id over DEVICE_ID
(``MSContextOperator._handle_data``). The node's YAML (shared by its ranks) therefore carries no
device_id and every rank-table rank (and any single-device run) gets ``--device_id <its device>``,
which ``iflytekspark.run`` writes into ``context.device_id``. In a dynamic cluster MindFormers drops
the device id and MindSpore assigns it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from orchestrator.plan.job import JobOptions
from orchestrator.plan.model import Pairs, RankLaunch
from orchestrator.plan.timeouts import Timeouts

RUN_MODES = {
    "pretrain": "train",
    "finetune": "finetune",
    "lora": "finetune",
    "predict": "predict",
    "predict_lora": "predict",
    "export": "export",
    "eval": "eval",
}


@dataclass(frozen=True)
class JobContext:
    """What every process of the job shares."""

    task: str
    launch_mode: str
    world: int
    accelerator: bool
    timeouts: Timeouts
    sched_host: Optional[str]
    sched_port: int
    shared_paths: tuple[str, ...]


@dataclass(frozen=True)
class NodeContext:
    """One node: where its job lives and what it runs."""

    host: str
    python: str
    job_dir: str
    yaml_path: str
    env: Pairs  # the inventory's env for this node
    device_count: int


def run_argv(job: JobContext, node: NodeContext, opts: JobOptions, inputs: dict[str, str],
             device_id: Optional[int]) -> tuple[str, ...]:  # fmt: skip
    """``<python> -m iflytekspark.run --config <yaml> --use_parallel ... --run_mode ...`` plus the inputs."""
    argv = [
        node.python,
        "-m",
        "iflytekspark.run",
        "--config",
        node.yaml_path,
        "--run_mode",
        RUN_MODES[job.task],
        "--use_parallel",
        str(job.world > 1),
    ]
    flags = {
        "train_dataset": "--train_dataset",
        "eval_dataset": "--eval_dataset",
        "load_checkpoint": "--load_checkpoint",
        "predict_data": "--predict_data",
        "tokenizer": "--tokenizer_file",
        "mindir_save_dir": "--mindir_save_dir",
    }
    for key, flag in flags.items():
        if inputs.get(key):
            argv += [flag, inputs[key]]
    if job.task in ("predict", "predict_lora"):
        argv += ["--predict_length", str(opts.predict_length)]
        if opts.predict_batch:
            argv += ["--predict_batch", str(opts.predict_batch)]
    if opts.resume:
        argv += ["--resume", "True"]
    if job.accelerator and device_id is not None and (job.launch_mode == "rank_table" or job.world == 1):
        argv += ["--device_id", str(device_id)]  # MindFormers reads no DEVICE_ID: see the module docstring
    return tuple(argv)


def _base_env(job: JobContext, node: NodeContext, log_dir: str) -> dict[str, str]:
    t = job.timeouts
    env = {
        "PYTHONUNBUFFERED": "1",
        "LOG_MF_PATH": f"{node.job_dir}/output/log",
        "DEVICE_NUM_PER_NODE": str(node.device_count),
    }
    if job.accelerator:
        env["HCCL_CONNECT_TIMEOUT"] = str(t.hccl_connect_s)
        env["HCCL_EXEC_TIMEOUT"] = str(t.hccl_exec_s)
        env["ASCEND_PROCESS_LOG_PATH"] = f"{log_dir}/plog"
    if job.shared_paths:
        env["SHARED_PATHS"] = ",".join(job.shared_paths)
    if job.launch_mode == "dynamic_cluster":
        env["MS_TOPO_TIMEOUT"] = str(t.topo_s)
    return env


def _identity(
    job: JobContext, rank: Optional[int], device_id: Optional[int], node: NodeContext
) -> dict[str, str]:
    if job.launch_mode == "rank_table":
        return {
            "RANK_TABLE_FILE": f"{node.job_dir}/rank_table.json",
            "RANK_SIZE": str(job.world),
            "RANK_ID": str(rank),
            "DEVICE_ID": str(device_id),
        }
    env = {
        "MS_SCHED_HOST": str(job.sched_host),
        "MS_SCHED_PORT": str(job.sched_port),
        "MS_WORKER_NUM": str(job.world),
        "RANK_SIZE": str(job.world),
    }
    if rank is None:
        env["MS_ROLE"] = "MS_SCHED"
        return env
    env.update(MS_ROLE="MS_WORKER", MS_NODE_ID=str(rank), RANK_ID=str(rank))
    if job.accelerator:
        env["DEVICE_ID"] = str(device_id)
    return env


def process_launch(job: JobContext, node: NodeContext, argv: Sequence[str], rank: Optional[int],
                   device_id: Optional[int]) -> RankLaunch:  # fmt: skip
    """The launch of rank ``rank`` on ``device_id`` (``rank`` None: the dynamic-cluster scheduler)."""
    name = f"rank_{rank}" if rank is not None else "scheduler"
    log_dir = f"{node.job_dir}/output/log/{name}"
    env = {**_base_env(job, node, log_dir), **dict(node.env), **_identity(job, rank, device_id, node)}
    return RankLaunch(
        role="worker" if rank is not None else "scheduler",
        rank=rank,
        host=node.host,
        device_id=device_id,
        env=tuple(sorted(env.items())),
        argv=tuple(argv),
        cwd=node.job_dir,
        log_dir=log_dir,
        stdout=f"{log_dir}/stdout.log",
    )
