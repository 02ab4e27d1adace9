"""Incremental decoding with the KV cache equals full recomputation at every step (docs/model.md §5)."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import full_logits

pytestmark = pytest.mark.mindspore

PROMPTS = [[9, 10, 11], [12, 13, 14, 15, 16, 17, 18], [20]]  # different lengths, one batch


@pytest.mark.parametrize(
    "window, max_length",
    [(3, 40), (64, 24)],  # cache = window, far past it; cache = max_length < window
    ids=["past-window", "within-window"],
)
def test_cache_equals_full_recomputation(make_steps, window, max_length):
    from iflytekspark.generation_config import GenerationConfig
    from iflytekspark.inference.generate import generate

    steps = make_steps(sparse_local_size=window)
    config = GenerationConfig(do_sample=True, top_k=0, temperature=2.0)  # varied tokens
    out = generate(steps, PROMPTS, config, max_length, eos_id=-1, seed=3, keep_logits=True)
    rows = [p + t for p, t in zip(PROMPTS, out.tokens)]
    assert [len(r) for r in rows] == [max_length] * 3  # every row ran to its own limit
    if window < max_length:
        assert min(len(t) for t in out.tokens) > window + 5  # far past the window
    reference = full_logits(steps.model, rows)
    for step, logits in enumerate(out.logits):
        for r, prompt in enumerate(PROMPTS):
            if step < len(out.tokens[r]):  # the row was still generating at this step
                expected = reference[r][len(prompt) + step - 1]
                np.testing.assert_allclose(logits[r], expected, rtol=1e-4, atol=1e-4, err_msg=f"{step=} {r=}")


def test_cache_is_a_window(make_steps):
    """The cache never grows past the window, and positions keep counting (absolute RoPE)."""
    from iflytekspark.inference.kv_cache import KVCache

    steps = make_steps(sparse_local_size=4)
    cache = KVCache(steps, capacity=100)
    cache.prefill(PROMPTS[:2])
    for _ in range(6):
        cache.decode(np.array([30, 31]))
    assert cache.keys.shape[3] == cache.values.shape[3] == 4
    assert cache.positions.tolist() == [3 + 6, 7 + 6]
    assert cache.valid.asnumpy().all()
