"""Decode throughput (new tokens/s): the KV cache against full recomputation (the baseline), in one run.

Small config: 4 layers, hidden 256, 4 heads, MLP inner 512, vocab 32000, window 128; batch 1, a
128-token prompt, 256 new tokens (greedy), float32, graph mode on CPU. Both sides are compiled first
(not timed), then timed once per repeat, the two alternating:
- baseline, full recomputation: every step runs the whole sequence again (the prefill graph over a
  fixed-width, left-padded buffer of prompt + 256 slots, so it compiles once), O(T^2) attention and
  O(T) MLP a step: what decoding costs without a cache;
- KV cache: ``generate`` (one prefill, then one decode step per token over a 128-slot sliding window).
Reported: median tokens/s of each and their ratio. Both must choose the same tokens (exit 1 if not:
then the comparison is void); no speed threshold fails the run.

Run: ``.venv/bin/python bench/bench_decode.py [--repeats 3] [--json]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from harness import Report, arguments, interleave, log, stdout_to_stderr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "model"))

SIZES = dict(num_layers=4, hidden_size=256, num_heads=4, ffn_hidden_size=1024, vocab_size=32000,
             sparse_local_size=128, seq_length=512)  # fmt: skip
PROMPT, NEW = 128, 256
BASELINE, CACHE = "full recomputation", "KV cache"


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


def full_recomputation(steps, prompt, new: int = NEW):
    from mindspore import Tensor

    width = PROMPT + NEW  # fixed, whatever ``new``: one graph
    tokens = list(prompt)
    for _ in range(new):
        pad = width - len(tokens)
        ids = np.array([[0] * pad + tokens], np.int32)
        positions = np.maximum(np.arange(width) - pad, 0).astype(np.int32)[None]
        valid = (np.arange(width) >= pad)[None]
        logits, _, _ = steps.prefill(Tensor(ids), Tensor(positions), Tensor(valid))
        tokens.append(int(np.argmax(logits.asnumpy()[0])))
    return tokens[PROMPT:]


def main(argv=None) -> int:
    args = arguments(__doc__, repeats=3).parse_args(argv)
    report = Report("bench_decode", BASELINE, args.repeats, "speedup",
                    dict(prompt=PROMPT, new_tokens=NEW, batch=1, **SIZES))  # fmt: skip
    chosen: dict[str, list] = {}
    with stdout_to_stderr(args.json):
        steps = build()
        prompt = list(np.random.default_rng(0).integers(8, SIZES["vocab_size"], PROMPT))
        log("compiling both graphs ...")
        with_cache(steps, prompt)
        full_recomputation(steps, prompt, new=2)

        def case(name, fn):
            return ("decode", name), lambda: chosen.__setitem__(name, fn(steps, prompt))

        samples = interleave([case(BASELINE, full_recomputation), case(CACHE, with_cache)], args.repeats)
    report.add(samples)
    for name in (BASELINE, CACHE):
        report.rate(("decode", name), NEW, "tokens")
    same = len(chosen[CACHE]) == NEW and chosen[CACHE] == chosen[BASELINE]
    report.extra["same_tokens"] = same
    if not same:
        report.notes.append("the cache and full recomputation chose different tokens: the comparison is void")
    report.emit(args.json)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
