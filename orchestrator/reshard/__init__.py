"""Checkpoints after and around a distributed job: pull them from the nodes, merge the shards into one
complete checkpoint, reshard offline, and the offline flow for jobs MindFormers will not reshard.

Public API::

    from orchestrator.reshard import pull, merge, reshard, plan_flow, render
    pulled = pull(job.plan(), job.record().nodes, Path("checkpoints/JOB"), job.job_id)  # newest common step
    merged = merge(pulled.out)                       # -> pulled.out/merged.ckpt (weights only)
    files = reshard(Path("full.ckpt"), Path("mp8"), Path("strategy/"))   # {rank: rank_R/checkpoint_R.ckpt}
    flow = plan_flow(inventory, "pretrain", sets, Path("work"))  # both plans + 5 steps; print(render(flow))
    flow_gather(flow, nodes); flow_transform(flow); flow_push(flow, nodes)  # steps 2-4, then launch
"""

from orchestrator.reshard.flow import OfflineFlow, needs_offline, plan_flow, render
from orchestrator.reshard.flow import gather as flow_gather
from orchestrator.reshard.flow import push_shards as flow_push
from orchestrator.reshard.flow import transform as flow_transform
from orchestrator.reshard.pull import Pulled, pull, pull_strategies
from orchestrator.reshard.steps import Selection, select_step
from orchestrator.reshard.transform import Merged, ReshardError, merge, reshard

__all__ = [
    "Merged",
    "OfflineFlow",
    "Pulled",
    "ReshardError",
    "Selection",
    "flow_gather",
    "flow_push",
    "flow_transform",
    "merge",
    "needs_offline",
    "plan_flow",
    "pull",
    "pull_strategies",
    "render",
    "reshard",
    "select_step",
]
