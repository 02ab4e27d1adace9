"""Test helpers: MindSpore strategy files for a tiny iFlytekSpark as its ``shard()`` methods lay it out,
and an independent NumPy splitter that cuts full weights into each rank's shard by such a layout.

Layouts (``dp`` x ``mp``, one pipeline stage), from the operator strategies in ``model/iflytekspark``:
column linears (q/k/v, fc0, fc1) MatMul ((dp,1),(mp,1)) -> weight dev [dp,1,mp] map [0,1], bias
BiasAdd ((dp,mp),(mp,)) -> dev [dp,mp] map [0]; row linears (out_proj, fc2) ((dp,mp),(1,mp)) -> weight
dev [dp,mp,1] map [0,1], bias ((dp,1),(1,)) -> dev [dp,1] map [0]; the embedding Gather ((mp,1),(dp,1))
-> dev [dp,mp,1] map [1,0]; LayerNorm ((dp,1,1),(1,),(1,)) -> dev [dp,1,1] map [0]. When a device matrix
covers fewer devices than dp*mp, MindSpore appends the repeat count on the right and shifts the map.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

COLUMN = ("q_proj", "k_proj", "v_proj", "fc0", "fc1")
ROW = ("out_proj", "fc2")


def layout(name: str, dp: int, mp: int) -> Tuple[List[int], List[int]]:
    """(device matrix, tensor map) of one parameter; map entries count device axes from the right."""
    part = name.split(".")[-2]
    if name.endswith("embedding_table"):
        dev, tmap = ([dp, mp, 1] if mp > 1 else [dp, 1, 1]), [1, 0]
    elif part in COLUMN:
        dev, tmap = ([dp, 1, mp], [0, 1]) if name.endswith("weight") else ([dp, mp], [0])
    elif part in ROW:
        dev, tmap = ([dp, mp, 1], [0, 1]) if name.endswith("weight") else ([dp, 1], [0])
    else:
        dev, tmap = [dp, 1, 1], [0]
    repeat = dp * mp // int(np.prod(dev))
    if repeat > 1:
        dev, tmap = dev + [repeat], [m + 1 if m >= 0 else m for m in tmap]
    return dev, tmap


def write_strategy(path: Path, names: List[str], dp: int, mp: int, stage: int = 0) -> Path:
    """A strategy file as ``strategy_ckpt_save_file`` writes it (protobuf ParallelStrategyMap); with
    pipeline stages, a rank of stage ``stage`` lists only the parameters its stage uses."""
    from mindspore.train import node_strategy_pb2 as pb

    smap = pb.ParallelStrategyMap(current_stage=stage)
    op = smap.parallel_strategy_item.add(node_name="Default/network-IFlytekSparkForCausalLM/MatMul-op0")
    op.parallel_strategys.stage = stage
    op.parallel_strategys.parallel_strategy.add().dim.extend([dp, 1])
    op.parallel_strategys.parallel_strategy.add().dim.extend([mp, 1])
    for name in names:
        dev, tmap = layout(name, dp, mp)
        item = smap.parallel_layout_item.add(param_name=name)
        lay = item.parallel_layouts
        lay.dev_matrix.add().dim.extend(dev)
        lay.tensor_map.add().dim.extend(tmap)
        lay.param_split_shape.add()
        lay.indices_offset.add()
        lay.field, lay.opt_weight_shard_step, lay.opt_weight_shard_size = 0, 0, 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(smap.SerializeToString())
    return path


def shard(full: np.ndarray, dev: List[int], tmap: List[int], rank: int) -> np.ndarray:
    """Rank ``rank``'s slice of ``full``: its coordinate in ``dev`` (row-major) picks each split axis."""
    coord = np.unravel_index(rank, dev)
    out = full
    for axis, m in enumerate(tmap):
        if m >= 0:
            parts, index = dev[len(dev) - 1 - m], coord[len(dev) - 1 - m]
            size = out.shape[axis] // parts
            out = np.take(out, range(index * size, (index + 1) * size), axis=axis)
    return out


def split(weights: Dict[str, np.ndarray], dp: int, mp: int) -> List[Dict[str, np.ndarray]]:
    """Every rank's shards of ``weights``."""
    return [{n: shard(a, *layout(n, dp, mp), r) for n, a in weights.items()} for r in range(dp * mp)]


def save(ms, weights: Dict[str, np.ndarray], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ms.save_checkpoint([{"name": n, "data": ms.Tensor(a)} for n, a in weights.items()], str(path))
    return path
