"""The job spec each node's agent starts from: the plan's processes of that node, with the job's id.

The model code is shipped content-addressed (``<workdir>/code/<sha256>/``) and put first on
PYTHONPATH, so every rank imports exactly the controller's ``iflytekspark``. A rank's environment is
the node's sourced CANN environment (``launch.node_env``) under the plan's variables; PYTHONPATH is
extended, never replaced: the code folder, the plan's (the inventory's) value, then the node's own
(CANN's entries first).
"""

from __future__ import annotations

from typing import Mapping

from orchestrator.agent.client import JobSpec, ProcessSpec
from orchestrator.launch.agent_rpc import agent_workdir
from orchestrator.plan.model import NodePlan, Plan, RankLaunch

FAIL_FAST_GRACE_S = 3.0  # TERM -> KILL grace when a job fails: every rank gone well within 10 s
# How long a node waits for npu-smi to stop listing exited processes on a job's NPUs (after a stop, before
# a start): the listing lags the exit by seconds, and HCCL fails (EJ0001) on an NPU not yet released.
NPU_RELEASE_WAIT_S = 30.0


def code_dir(workdir: str, sha: str) -> str:
    return f"{workdir.rstrip('/')}/code/{sha}"


def spec_path(workdir: str, job_id: str) -> str:
    return f"{agent_workdir(workdir)}/specs/{job_id}.json"


def agent_name(launch: RankLaunch) -> str:
    """The agent's name of a process: ``rank-<R>`` or ``scheduler``."""
    return "scheduler" if launch.rank is None else f"rank-{launch.rank}"


def rank_env(planned: Mapping[str, str], code: str, node_env: Mapping[str, str] = {}) -> dict[str, str]:
    """The environment a process starts with: ``node_env`` (CANN's, sourced on the node) under the plan's
    ``planned`` variables, PYTHONPATH = code folder, the plan's value, the node's (see the docstring)."""
    env = {**node_env, **planned}
    paths = (code, planned.get("PYTHONPATH"), node_env.get("PYTHONPATH"))
    env["PYTHONPATH"] = ":".join(p for p in paths if p)
    return env


def _process(launch: RankLaunch, code: str, node_env: Mapping[str, str]) -> ProcessSpec:
    env = rank_env(dict(launch.env), code, node_env)
    binds = "DEVICE_ID" in env or "--device_id" in launch.argv  # an NPU process: its physical device
    return ProcessSpec(argv=launch.argv, log=launch.stdout, env=env, cwd=launch.cwd, rank=launch.rank,
                       device=launch.device_id if binds else None)  # fmt: skip


def _ports(plan: Plan, node: NodePlan) -> tuple[int, ...]:
    """The ports the job reserves on ``node``: the dynamic-cluster scheduler's, where it runs."""
    sched = any(x.role == "scheduler" for x in node.launches)
    return (plan.sched_port,) if sched and plan.sched_port else ()


def node_spec(plan: Plan, node: NodePlan, job_id: str, workdir: str, code: str,
              node_env: Mapping[str, str] = {}) -> JobSpec:  # fmt: skip
    """The agent spec of ``node``; ``code`` is the shipped model code folder on that node, ``node_env``
    the variables its CANN scripts set (``launch.node_env``)."""
    sched = [_process(x, code, node_env) for x in node.launches if x.role == "scheduler"]
    return JobSpec(
        job_id=job_id,
        node=node.host,
        work_dir=agent_workdir(workdir),
        ranks=tuple(_process(x, code, node_env) for x in node.launches if x.role == "worker"),
        scheduler=sched[0] if sched else None,
        devices=node.devices,
        ports=_ports(plan, node),
        grace_s=FAIL_FAST_GRACE_S,
        fail_fast=True,
        heartbeat_s=plan.timeouts.heartbeat_s,
        inherit_env=True,
        seq_length=plan.model.seq_length,
        release_wait_s=NPU_RELEASE_WAIT_S,
    )
