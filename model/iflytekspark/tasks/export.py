"""run_mode export: MindIR graphs of prefill and of one decode step into ``--mindir_save_dir``.

Shapes: batch = --predict_batch (default model_config.batch_size, else 1); prefill length S and the
length limit = --predict_length (default model seq_length); the decode cache holds min(S, window)
slots. See :mod:`iflytekspark.inference.export` for the graphs' inputs and outputs.
"""

from __future__ import annotations

from typing import Any

from .setup import RunConfigError, init_context


def run(config: Any, opts: Any) -> int:
    from ..inference.export import ExportShape, export_mindir
    from ..inference.runtime import build_model
    from ..inference.steps import Steps

    out_dir = opts.mindir_save_dir or config.get("mindir_save_dir")
    if not out_dir:
        raise RunConfigError("run_mode export needs --mindir_save_dir <directory>")
    model_cfg = config.model.model_config
    batch = int(opts.predict_batch or model_cfg.get("batch_size") or 1)
    length = int(opts.predict_length or model_cfg.get("seq_length"))
    if batch < 1 or length < 1:
        raise RunConfigError(f"export shape batch {batch}, length {length}: both must be >= 1")
    config.run_mode = "predict"  # MindFormers' context knows no "export"; for it this is inference
    init_context(config)
    steps = Steps(build_model(config))
    paths = export_mindir(steps, out_dir, ExportShape(batch, length, length))
    for kind, path in paths.items():
        print(f"export: {kind} graph written to {path}")
    return 0
