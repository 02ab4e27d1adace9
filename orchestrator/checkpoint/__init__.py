"""Checkpoints on nodes: check a local checkpoint, then lay it out as ``model_dir/rank_<R>/``.

Public API::

    from orchestrator.checkpoint import inspect_checkpoint, checkpoint_targets, rank_hosts
    ckpt = inspect_checkpoint(Path("ckpt/"))                 # InputError on a bad shape
    targets = checkpoint_targets(ckpt, inventory.nodes, "/data/model_dir")
    orchestrator.transfer.push(targets, PushOptions(...))
"""

from orchestrator.checkpoint.layout import LocalCheckpoint, inspect_checkpoint
from orchestrator.checkpoint.placement import checkpoint_targets, placement, rank_hosts

__all__ = ["LocalCheckpoint", "checkpoint_targets", "inspect_checkpoint", "placement", "rank_hosts"]
