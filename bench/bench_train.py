"""Training throughput (tokens/s) on CPU: iFlytekSpark against MindFormers' own LLaMA, same sizes, one run.

Both models: 4 layers, hidden 256, 4 heads, MLP inner width 704, vocabulary 8192, sequence 256, batch 4,
float32, graph mode, trained by the same cell (SparkTrainOneStepCell: clip 1.0) and optimizer (SparkAdamW)
on the same random token batches. iFlytekSpark's window is 256 (the whole sequence), so both attend
causally over the same keys; it differs from LLaMA in LayerNorm + biases + GeGLU + tied head.
Reported: median tokens/s over timed steps after compile and warm-up (the two models' steps
interleaved), and the ratio to LLaMA.
Run: ``.venv/bin/python bench/bench_train.py [--steps 20]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

LAYERS, HIDDEN, HEADS, INNER, VOCAB, SEQ, BATCH = 4, 256, 4, 704, 8192, 256, 4


def spark():
    from iflytekspark.config import IFlytekSparkConfig
    from iflytekspark.model import IFlytekSparkForCausalLM

    cfg = IFlytekSparkConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        ffn_hidden_size=2 * INNER,
        num_layers=LAYERS,
        num_heads=HEADS,
        seq_length=SEQ,
        sparse_local_size=SEQ,
        batch_size=BATCH,
        compute_type="float32",
    )
    return IFlytekSparkForCausalLM(cfg)


def llama():
    from mindformers.models.llama import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=INNER,
        num_layers=LAYERS,
        num_heads=HEADS,
        seq_length=SEQ,
        batch_size=BATCH,
        compute_dtype="float32",
        layernorm_compute_type="float32",
        softmax_compute_type="float32",
        rotary_dtype="float32",
        param_init_type="float32",
        use_flash_attention=False,
        use_rope_slice=True,
        fused_rms_norm=False,
        pad_token_id=0,
    )
    return LlamaForCausalLM(cfg)


def train_step(network):
    """A compiled training step of ``network`` (same cell and optimizer for both models)."""
    from iflytekspark.train.optimizer import SparkAdamW
    from iflytekspark.train.wrapper import SparkTrainOneStepCell

    network.set_train(True)
    return SparkTrainOneStepCell(network, SparkAdamW(network.trainable_params(), learning_rate=1e-4))


def measure(steps: dict, rounds: int, warmup: int = 3) -> dict:
    """Median seconds per step of each model, the models' steps interleaved so that load changes on a
    shared machine hit both alike."""
    import mindspore as ms

    rng = np.random.default_rng(0)
    batches = [ms.Tensor(rng.integers(1, VOCAB, (BATCH, SEQ + 1)).astype(np.int32)) for _ in range(4)]
    times = {name: [] for name in steps}
    for i in range(warmup + rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step(batches[i % len(batches)])[0].asnumpy()  # waits for the step to finish
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    os.chdir(tempfile.mkdtemp(prefix="bench_train_"))  # MindFormers writes ./output/log: not into the repo
    import mindspore as ms

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    ms.set_seed(0)
    networks = {"mindformers LLaMA": llama(), "iFlytekSpark": spark()}
    seconds = measure({name: train_step(net) for name, net in networks.items()}, args.steps)
    base = BATCH * SEQ / seconds["mindformers LLaMA"]
    print(
        f"training throughput, CPU, {LAYERS} layers, hidden {HIDDEN}, seq {SEQ}, batch {BATCH}, vocab {VOCAB}"
    )
    for name, net in networks.items():
        tps = BATCH * SEQ / seconds[name]
        params = sum(int(np.prod(p.shape)) for p in net.trainable_params())
        print(f"  {name:18s} {tps:9.0f} tokens/s  ({params / 1e6:.2f} M params)  x{tps / base:.2f} of LLaMA")


if __name__ == "__main__":
    main()
