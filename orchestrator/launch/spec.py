"""The job spec each node's agent starts from: the plan's processes of that node, with the job's id.

The model code is shipped content-addressed (``<workdir>/code/<sha256>/``) and put first on
PYTHONPATH, so every rank imports exactly the controller's ``iflytekspark``.
"""

from __future__ import annotations

from orchestrator.agent.client import JobSpec, ProcessSpec
from orchestrator.launch.agent_rpc import agent_workdir
from orchestrator.plan.model import NodePlan, Plan, RankLaunch

FAIL_FAST_GRACE_S = 3.0  # TERM -> KILL grace when a job fails: every rank gone well within 10 s


def code_dir(workdir: str, sha: str) -> str:
    return f"{workdir.rstrip('/')}/code/{sha}"


def spec_path(workdir: str, job_id: str) -> str:
    return f"{agent_workdir(workdir)}/specs/{job_id}.json"


def agent_name(launch: RankLaunch) -> str:
    """The agent's name of a process: ``rank-<R>`` or ``scheduler``."""
    return "scheduler" if launch.rank is None else f"rank-{launch.rank}"


def _process(launch: RankLaunch, code: str) -> ProcessSpec:
    env = dict(launch.env)
    env["PYTHONPATH"] = code + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return ProcessSpec(argv=launch.argv, log=launch.stdout, env=env, cwd=launch.cwd, rank=launch.rank)


def node_spec(plan: Plan, node: NodePlan, job_id: str, workdir: str, code: str) -> JobSpec:
    """The agent spec of ``node``; ``code`` is the shipped model code folder on that node."""
    sched = [_process(x, code) for x in node.launches if x.role == "scheduler"]
    return JobSpec(
        job_id=job_id,
        node=node.host,
        work_dir=agent_workdir(workdir),
        ranks=tuple(_process(x, code) for x in node.launches if x.role == "worker"),
        scheduler=sched[0] if sched else None,
        devices=node.devices,
        grace_s=FAIL_FAST_GRACE_S,
        fail_fast=True,
        heartbeat_s=1.0,
        inherit_env=True,
        seq_length=plan.model.seq_length,
    )
