"""Fixtures of the inference tests: a tiny model's Steps in graph mode, and full recomputation."""

from __future__ import annotations

from typing import Any, List, Sequence

import numpy as np
import pytest


@pytest.fixture(scope="module")
def graph_module(ms_context):
    """GRAPH mode for a whole test module (each graph compiles once per shape), PyNative after."""
    ms_context.set_context(mode=ms_context.GRAPH_MODE)
    yield ms_context
    ms_context.set_context(mode=ms_context.PYNATIVE_MODE)


@pytest.fixture(scope="module")
def make_steps(tiny_model, graph_module) -> Any:
    """callable (seed=0, **config overrides) -> Steps of a tiny model, in graph mode."""
    from iflytekspark.inference.steps import Steps

    def make(seed: int = 0, **overrides: Any) -> Steps:
        return Steps(tiny_model(seed, **overrides))

    return make


def full_logits(model: Any, rows: Sequence[Sequence[int]]) -> List[np.ndarray]:
    """Logits (len, V) of every row by full recomputation (no cache): one call, rows right-padded
    (the model is causal, so the padding after a row's end changes nothing before it)."""
    from mindspore import Tensor

    width = max(len(r) for r in rows)
    batch = np.zeros((len(rows), width), np.int32)
    for i, r in enumerate(rows):
        batch[i, : len(r)] = r
    logits = model.logits(Tensor(batch)).asnumpy()
    return [logits[i, : len(r)] for i, r in enumerate(rows)]
