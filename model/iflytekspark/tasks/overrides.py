"""Command-line values over the YAML, only where a flag was given (pure: no mindspore)."""

from __future__ import annotations

from typing import Any, List, MutableMapping

DEFAULT_RUN_MODE = "train"


def _set(cfg: MutableMapping[str, Any], path: str, value: Any, changes: List[str]) -> None:
    """Set the dotted ``path`` in ``cfg`` (creating sections) and record the change."""
    *parents, leaf = path.split(".")
    node = cfg
    for key in parents:
        if node.get(key) is None:
            node[key] = {}
        node = node[key]
    node[leaf] = value
    changes.append(f"{path} = {value!r}")


def apply_overrides(cfg: MutableMapping[str, Any], opts: Any) -> List[str]:
    """Write the given flags of ``opts`` (a RunOptions) into ``cfg``; return "key = value" lines."""
    changes: List[str] = []
    _set(cfg, "run_mode", opts.run_mode or cfg.get("run_mode") or DEFAULT_RUN_MODE, changes)
    simple = {
        "use_parallel": opts.use_parallel,
        "load_checkpoint": opts.load_checkpoint,
        "auto_trans_ckpt": opts.auto_trans_ckpt,
        "resume_training": opts.resume,
        "parallel.enable_parallel_optimizer": opts.optimizer_parallel,
        "context.device_id": opts.device_id,
    }
    for path, value in simple.items():
        if value is not None:
            _set(cfg, path, value, changes)
    for split, value in (("train", opts.train_dataset), ("eval", opts.eval_dataset)):
        if value is None:
            continue
        _set(cfg, f"{split}_dataset.data_loader.dataset_dir", value, changes)
        task = cfg.get(f"{split}_dataset_task") or {}
        if task.get("dataset_config") is not None:
            _set(cfg, f"{split}_dataset_task.dataset_config.data_loader.dataset_dir", value, changes)
    return changes
