"""Pushing files to nodes: manifests with cached hashes, a node receiver that resumes and verifies,
relay chains between nodes, direct pushes otherwise, and shared-storage checks.

Public API::

    from orchestrator.transfer import push, build_items, source_files, Target, PushOptions
    items = build_items(source_files(Path("data/train.mindrecord")))       # hashed (cached)
    result = push([Target(node, "/data/in", tuple(items)) for node in inventory.nodes],
                  PushOptions(shared_paths=inventory.cluster.shared_paths))
    result.ok, result.controller_bytes, result.to_json()
"""

from orchestrator.transfer.engine import push
from orchestrator.transfer.manifest import FileEntry, Item, build_items, default_cache_path, source_files
from orchestrator.transfer.model import MODES, NodeReport, PushOptions, PushResult, Target
from orchestrator.transfer.shared import SharedCheck, verify_shared

__all__ = [
    "MODES",
    "FileEntry",
    "Item",
    "NodeReport",
    "PushOptions",
    "PushResult",
    "SharedCheck",
    "Target",
    "build_items",
    "default_cache_path",
    "push",
    "source_files",
    "verify_shared",
]
