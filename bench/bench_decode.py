"""Decode throughput (new tokens/s): the KV cache against full recomputation, in one run.

Small config: 4 layers, hidden 256, 4 heads, MLP inner 512, vocab 32000, window 128; batch 1, a
128-token prompt, 256 new tokens (greedy), float32, graph mode on CPU. Both sides are timed after their
graphs are compiled (one warm-up run each):
- cache: ``generate`` (one prefill, then one decode step per token over a 128-slot sliding window);
- full recomputation: every step runs the whole sequence again (the prefill graph over a fixed-width,
  left-padded buffer of prompt + 256 slots, so it compiles once), O(T^2) attention and O(T) MLP a step.
Both must choose the same tokens. The cache must win by at least 5x.

Run: ``.venv/bin/python bench/bench_decode.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "model"))

SIZES = dict(num_layers=4, hidden_size=256, num_heads=4, ffn_hidden_size=1024, vocab_size=32000,
             sparse_local_size=128, seq_length=512)  # fmt: skip
PROMPT, NEW = 128, 256


def build():
    import mindspore as ms
    from iflytekspark.config import IFlytekSparkConfig
    from iflytekspark.inference.steps import Steps
    from iflytekspark.model import IFlytekSparkForCausalLM

    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    ms.set_seed(0)
    return Steps(IFlytekSparkForCausalLM(IFlytekSparkConfig(compute_type="float32", **SIZES)))


def with_cache(steps, prompt):
    from iflytekspark.inference.generate import generate

    out = generate(steps, [prompt], max_length=PROMPT + NEW, eos_id=-1)
    return out.tokens[0]


def full_recomputation(steps, prompt):
    from mindspore import Tensor

    width = PROMPT + NEW
    tokens = list(prompt)
    for _ in range(NEW):
        pad = width - len(tokens)
        ids = np.array([[0] * pad + tokens], np.int32)
        positions = np.maximum(np.arange(width) - pad, 0).astype(np.int32)[None]
        valid = (np.arange(width) >= pad)[None]
        logits, _, _ = steps.prefill(Tensor(ids), Tensor(positions), Tensor(valid))
        tokens.append(int(np.argmax(logits.asnumpy()[0])))
    return tokens[PROMPT:]


def timed(fn, steps, prompt):
    fn(steps, prompt)  # compile
    start = time.perf_counter()
    tokens = fn(steps, prompt)
    return tokens, time.perf_counter() - start


def main() -> int:
    steps = build()
    prompt = list(np.random.default_rng(0).integers(8, SIZES["vocab_size"], PROMPT))
    cached, t_cache = timed(with_cache, steps, prompt)
    full, t_full = timed(full_recomputation, steps, prompt)
    assert len(cached) == NEW and cached == full, "the cache and full recomputation chose different tokens"
    speed_cache, speed_full = NEW / t_cache, NEW / t_full
    print(f"decode {NEW} new tokens after a {PROMPT}-token prompt, {SIZES}")
    print(f"full recomputation (baseline): {t_full:7.2f} s  {speed_full:8.1f} tokens/s")
    print(f"KV cache:                      {t_cache:7.2f} s  {speed_cache:8.1f} tokens/s")
    print(f"ratio: {speed_cache / speed_full:.1f}x (required >= 5x)")
    return 0 if speed_cache >= 5 * speed_full else 1


if __name__ == "__main__":
    sys.exit(main())
