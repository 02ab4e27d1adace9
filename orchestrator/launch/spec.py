"""The job spec each node's agent starts from: the plan's processes of that node, with the job's id.

The model code is shipped content-addressed (``<workdir>/code/<sha256>/``) and put first on
PYTHONPATH, so every rank imports exactly the controller's ``iflytekspark``.
"""

from __future__ import annotations

from typing import Any, Optional

from orchestrator.launch.agent_rpc import AGENT_VERSION, agent_workdir
from orchestrator.plan.model import NodePlan, Plan, RankLaunch

FAIL_FAST_GRACE_S = 3.0  # TERM -> KILL grace when a job fails: every rank gone well within 10 s


def code_dir(workdir: str, sha: str) -> str:
    return f"{workdir.rstrip('/')}/code/{sha}"


def spec_path(workdir: str, job_id: str) -> str:
    return f"{agent_workdir(workdir)}/specs/{job_id}.json"


def agent_name(launch: RankLaunch) -> str:
    """The agent's name of a process: ``rank-<R>`` or ``scheduler``."""
    return "scheduler" if launch.rank is None else f"rank-{launch.rank}"


def _process(launch: RankLaunch, code: Optional[str]) -> dict[str, Any]:
    env = dict(launch.env)
    if code:
        env["PYTHONPATH"] = code + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    out = {"argv": list(launch.argv), "env": env, "cwd": launch.cwd, "log": launch.stdout}
    if launch.rank is not None:
        out["rank"] = launch.rank
    return out


def node_spec(plan: Plan, node: NodePlan, job_id: str, workdir: str, code: Optional[str]) -> dict[str, Any]:
    """The agent spec of ``node`` (``code``: the shipped model code folder, or None to ship none)."""
    procs = [x for x in node.launches if x.role == "worker"]
    sched = [x for x in node.launches if x.role == "scheduler"]
    spec: dict[str, Any] = {
        "job_id": job_id,
        "agent_version": AGENT_VERSION,
        "node": node.host,
        "work_dir": agent_workdir(workdir),
        "grace_s": FAIL_FAST_GRACE_S,
        "heartbeat_s": 1.0,
        "fail_fast": True,
        "inherit_env": True,
        "devices": list(node.devices),
        "seq_length": plan.model.seq_length,
        "ranks": [_process(x, code) for x in procs],
    }
    if sched:
        spec["scheduler"] = _process(sched[0], code)
    return spec
