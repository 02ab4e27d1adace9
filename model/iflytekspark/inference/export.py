"""MindIR export of the two inference graphs (docs/model.md §5), one pair per batch size and length.

``prefill_b{B}_s{S}.mindir``: (tokens (B, S) int32, positions (B, S) int32, key_valid (B, S) bool)
-> (logits (B, V), keys, values (L, B, nh, S, d)).
``decode_b{B}_c{C}.mindir``: (tokens (B, 1), positions (B, 1), keys, values (L, B, nh, C, d),
valid (B, C) bool) -> (logits (B, V), keys, values, valid), C = min(max_length, window).
Sampling stays on the host (numpy, :mod:`.sampling`). Load a file back with :func:`load_graph`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np
from mindspore import Tensor

from .steps import Steps

__all__ = ["ExportShape", "example_inputs", "export_mindir", "load_graph"]


@dataclass(frozen=True)
class ExportShape:
    """The shapes one pair of graphs is compiled for."""

    batch_size: int
    prompt_length: int  # S of the prefill graph
    max_length: int  # prompt + answer; the decode cache holds min(max_length, window) slots

    def capacity(self, window: int) -> int:
        return max(1, min(self.max_length, window))


def example_inputs(steps: Steps, shape: ExportShape) -> Dict[str, Tuple[Tensor, ...]]:
    """Inputs of the right shapes and dtypes (a full prompt of token 1; an empty cache) for each graph."""
    cfg = steps.model.config
    b, s, c = shape.batch_size, shape.prompt_length, shape.capacity(steps.window)
    cache = np.zeros((cfg.num_layers, b, cfg.num_heads, c, cfg.head_dim), np.float32)
    cache_t = Tensor(cache).astype(cfg.compute_type)
    positions = np.tile(np.arange(s, dtype=np.int32), (b, 1))
    prefill = (Tensor(np.ones((b, s), np.int32)), Tensor(positions), Tensor(np.ones((b, s), bool)))
    decode = (
        Tensor(np.ones((b, 1), np.int32)),
        Tensor(np.zeros((b, 1), np.int32)),
        cache_t,
        cache_t,
        Tensor(np.zeros((b, c), bool)),
    )
    return {"prefill": prefill, "decode": decode}


def export_mindir(steps: Steps, out_dir: Any, shape: ExportShape) -> Dict[str, Path]:
    """Write the prefill and decode graphs (weights included) for ``shape``; returns their paths."""
    import mindspore as ms

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inputs = example_inputs(steps, shape)
    c = shape.capacity(steps.window)
    names = {
        "prefill": f"prefill_b{shape.batch_size}_s{shape.prompt_length}",
        "decode": f"decode_b{shape.batch_size}_c{c}",
    }
    paths = {}
    for kind, cell in (("prefill", steps.prefill), ("decode", steps.decode)):
        base = out / names[kind]
        ms.export(cell, *inputs[kind], file_name=str(base), file_format="MINDIR")
        paths[kind] = base.with_suffix(".mindir")
    return paths


def load_graph(path: Any):
    """A MindIR file as a callable cell (``nn.GraphCell``)."""
    import mindspore as ms
    from mindspore import nn

    return nn.GraphCell(ms.load(str(path)))
