"""Training throughput (tokens/s) on CPU: iFlytekSpark against MindFormers' own LLaMA, same sizes, one run.

Both models: 4 layers, hidden 256, 4 heads, MLP inner width 704, vocabulary 8192, sequence 256, batch 4,
float32, graph mode, trained by the same cell (SparkTrainOneStepCell: clip 1.0) and optimizer (SparkAdamW)
on the same random token batches. iFlytekSpark's window is 256 (the whole sequence), so both attend
causally over the same keys; it differs from LLaMA in LayerNorm + biases + GeGLU + tied head.
Baseline: MindFormers' LLaMA, the stock decoder the same framework trains, at the same sizes: the ratio
says what iFlytekSpark's architecture costs or saves. Reported: median tokens/s over timed steps after
compile and 3 warm-up steps, each repeat one step of each model (order alternating), and the ratio.
Run: ``.venv/bin/python bench/bench_train.py [--repeats 20] [--json]`` (``--steps`` = ``--repeats``).
"""

from __future__ import annotations

import itertools
import os
import tempfile

import numpy as np
from harness import Report, arguments, interleave, log, stdout_to_stderr

LAYERS, HIDDEN, HEADS, INNER, VOCAB, SEQ, BATCH = 4, 256, 4, 704, 8192, 256, 4
BASELINE = "mindformers LLaMA"


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


def main(argv=None) -> None:
    args = arguments(__doc__, repeats=20, alias="--steps").parse_args(argv)
    params = dict(
        layers=LAYERS, hidden=HIDDEN, heads=HEADS, mlp_inner=INNER, vocab=VOCAB, seq=SEQ, batch=BATCH
    )
    report = Report("bench_train", BASELINE, args.repeats, "speedup", params)
    with stdout_to_stderr(args.json):
        os.chdir(
            tempfile.mkdtemp(prefix="bench_train_")
        )  # MindFormers writes ./output/log: not into the repo
        import mindspore as ms

        ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
        ms.set_seed(0)
        networks = {BASELINE: llama(), "iFlytekSpark": spark()}
        rng = np.random.default_rng(0)
        batches = [ms.Tensor(rng.integers(1, VOCAB, (BATCH, SEQ + 1)).astype(np.int32)) for _ in range(4)]

        def case(name):
            step, feed = train_step(networks[name]), itertools.cycle(batches)
            return ("train step", name), lambda: step(next(feed))[0].asnumpy()  # waits for the step

        log("compiling both training steps ...")
        samples = interleave([case(name) for name in networks], args.repeats, warmup=3)
    report.add(samples)
    for name, net in networks.items():
        report.rate(("train step", name), BATCH * SEQ, "tokens")
        report.extra[f"{name} params"] = sum(int(np.prod(p.shape)) for p in net.trainable_params())
    report.emit(args.json)


if __name__ == "__main__":
    main()
