"""Build the model of rendered YAMLs under their parallel layout, without devices and without running it,
and print (one JSON document) what the Ascend graph would get. Run as a subprocess by
test_model_layouts.py: the auto-parallel context is process-wide.

For each YAML: the auto-parallel context MindFormers would set from it (semi-auto parallel,
``pipeline_stages``, the parallel optimizer), ``build_parallel_config`` (MindFormers' own, as the
Trainer calls it), the network built through the registry with the Trainer's default arguments, then
wrapped by the Trainer's own ``_wrap_network_with_tool_cells_legacy`` (PipelineCell,
MicroBatchInterleaved) and its runner wrapper reset for pipelines. Reported: each cell's
``pipeline_stage``, each primitive's ``in_strategy``, each parameter's ``comm_fusion`` and
``parallel_optimizer``, which layers recompute, the wrapper cells and the runner wrapper type.

usage: python -m tests.model.layout_probe A.yaml [B.yaml ...]
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace
from typing import Any


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def describe(net: Any) -> dict:
    stages, strategies, recompute = {}, {}, []
    for name, cell in net.cells_and_names():
        if not name:
            continue
        stage = getattr(cell, "_pipeline_stage", None)  # the property raises until a stage is set
        if stage is not None:
            stages[name] = stage
        if getattr(cell, "_recompute_cell", None) is not None:
            recompute.append(name)
        for attr, prim in cell._primitives.items():  # noqa: SLF001 - what the graph compiler reads
            if prim is not None and getattr(prim, "in_strategy", None) is not None:
                strategies[f"{name}.{attr}"] = _plain(prim.in_strategy)
    params = {p.name: [p.comm_fusion, p.parallel_optimizer] for p in net.get_parameters()}
    return {"stages": stages, "strategies": strategies, "recompute": recompute, "params": params}


def probe(path: str) -> dict:
    import mindspore as ms
    from iflytekspark.registry import build_from_yaml_dict
    from mindformers.core.parallel_config import build_parallel_config
    from mindformers.tools.register import MindFormerConfig
    from mindformers.trainer.base_trainer import BaseTrainer

    config = MindFormerConfig(path)
    pp = config.parallel_config.pipeline_stage
    ms.reset_auto_parallel_context()
    ms.set_auto_parallel_context(
        parallel_mode="semi_auto_parallel",
        pipeline_stages=pp,
        full_batch=config.parallel.full_batch,
        enable_parallel_optimizer=config.parallel.enable_parallel_optimizer,
    )
    build_parallel_config(config)
    net = build_from_yaml_dict(
        config.model, parallel_config=config.parallel_config, batch_size=1, calculate_per_token_loss=False
    )
    out = describe(net)
    out["vocab_emb_dp"] = config.parallel_config.vocab_emb_dp
    out["context"] = {
        k: ms.get_auto_parallel_context(k)
        for k in ("parallel_mode", "pipeline_stages", "enable_parallel_optimizer")
    }
    config.runner_config.gradient_accumulation_steps = config.runner_config.gradient_accumulation_steps or 1
    config.runner_wrapper.calculate_per_token_loss = False
    trainer = SimpleNamespace(config=config, get_pipeline_stages=BaseTrainer.get_pipeline_stages)
    wrapped = BaseTrainer._wrap_network_with_tool_cells_legacy(trainer, net)  # noqa: SLF001
    chain = []
    cell = wrapped
    while cell is not net and cell is not None:
        chain.append(type(cell).__name__)
        micro = getattr(cell, "micro_size", None) or getattr(cell, "interleave_num", None)
        if micro:
            chain[-1] += f"({micro})"
        cell = getattr(cell, "network", None) or getattr(cell, "_backbone", None)
    out["wrappers"] = chain
    if pp > 1:
        config.calculate_per_token_loss = False
        BaseTrainer._reset_wrapper_for_pipeline_parallel(trainer)  # noqa: SLF001
    out["runner_wrapper"] = config.runner_wrapper.type
    return out


def main(paths: list) -> None:
    import mindspore as ms

    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    print(json.dumps({p: probe(p) for p in paths}, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])
