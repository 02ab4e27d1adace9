"""``python -m iflytekspark.run --run_mode predict|export`` end to end on a tiny model, and its errors.

The three runs (predict, LoRA predict with streaming, export) start at once in their own processes; the
answers are checked against in-process generation. Input errors: see test_predict_errors.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

from tests.fixtures.model import random_weights

from .conftest import run_all, run_config

pytestmark = pytest.mark.mindspore

SIZES = dict(
    seq_length=32, num_layers=2, hidden_size=32, num_heads=4, ffn_hidden_size=64, sparse_local_size=6
)
QUESTIONS = ["Tell me about the river.", "Say ka ri 好", "Why?"]
DATA = "[" + "##".join(QUESTIONS) + "]"
# MindFormers' Python log lines and MindSpore's C++ ones (the runs' stderr is merged into stdout)
LOG_LINE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ - |\[(?:WARNING|ERROR|INFO)\] )[^\n]*\n")


def _save(weights: Dict[str, np.ndarray], path: Path) -> str:
    import mindspore as ms

    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in weights.items()], str(path))
    return str(path)


def _model(vocab: int, base: str, lora: str = ""):
    from iflytekspark.checkpoint import load_weights
    from iflytekspark.config import IFlytekSparkConfig
    from iflytekspark.lora import apply_lora, load_lora
    from iflytekspark.model import IFlytekSparkForCausalLM

    model = IFlytekSparkForCausalLM(IFlytekSparkConfig(vocab_size=vocab, compute_type="float32", **SIZES))
    if lora:
        apply_lora(model)
    load_weights(model, base)
    if lora:
        load_lora(model, lora)
    return model


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_tokenizer, graph_module) -> Dict[str, Any]:
    from iflytekspark.lora import save_lora
    from iflytekspark.tokenizer import Tokenizer

    root = tmp_path_factory.mktemp("predict")
    vocab = Tokenizer(tiny_tokenizer).vocab_size
    base = _save(random_weights({**SIZES, "vocab_size": vocab}, seed=4), root / "base.ckpt")
    lora_model = _model(vocab, base, "")
    from iflytekspark.lora import apply_lora, lora_state

    apply_lora(lora_model)
    rng = np.random.default_rng(1)
    for param in lora_state(lora_model).values():
        param.set_data(graph_module.Tensor(0.05 * rng.standard_normal(param.shape).astype(np.float32)))
    lora = str(root / "lora.ckpt")
    save_lora(lora_model, lora)

    cfg = run_config(vocab_size=vocab, **SIZES)
    lora_cfg = {**run_config(vocab_size=vocab, lora=True, **SIZES), "lora_checkpoint": lora}
    common = ("--run_mode", "predict", "--tokenizer_file", str(tiny_tokenizer), "--predict_data", DATA)
    plan = {
        "predict": (cfg, (*common, "--load_checkpoint", base, "--predict_batch", "2", "--predict_length", "20")),
        "lora": (lora_cfg, (*common, "--load_checkpoint", base, "--streamer", "True", "--predict_length", "24")),
        "export": (cfg, ("--run_mode", "export", "--load_checkpoint", base, "--mindir_save_dir", "mindir",
                         "--predict_batch", "2", "--predict_length", "10")),
    }  # fmt: skip
    results = run_all({name: (root / name, c, args) for name, (c, args) in plan.items()})
    return {"results": results, "vocab": vocab, "base": base, "lora": lora, "tokenizer": tiny_tokenizer}


def _steps(runs, lora: str):
    from iflytekspark.inference.steps import Steps

    key = f"steps-{lora}"
    if key not in runs:
        runs[key] = Steps(_model(runs["vocab"], runs["base"], lora))
    return runs[key]


def _expected(runs, lora: str, max_length: int):
    """The answers of the in-process generator for the same model, prompts and length limit."""
    from iflytekspark.inference.generate import generate
    from iflytekspark.inference.prompts import apply_template
    from iflytekspark.tokenizer import Tokenizer

    tok = Tokenizer(runs["tokenizer"])
    steps = _steps(runs, lora)
    ids = tok.encode_batch(apply_template(QUESTIONS))
    out = generate(steps, ids, max_length=max_length, eos_id=tok.eos_id)
    return apply_template(QUESTIONS), [tok.decode(t) for t in out.tokens]


def _lines(result) -> list:
    path = result.cwd / "log" / "infer_result_num3_rank0.json"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_predict_writes_every_answer_in_batches(runs):
    result = runs["results"]["predict"]
    assert result.returncode == 0, result.output[-3000:]
    prompts, answers = _expected(runs, "", 20)
    assert _lines(result) == [{"predict": a, "prompt": p} for p, a in zip(prompts, answers)]  # 2 + leftover 1
    readable = (result.cwd / "log" / "infer_result_num3_rank0.log").read_text(encoding="utf-8")
    assert "=== question 2" in readable and answers[2] in readable


def test_lora_predict_streams_the_answers(runs):
    result = runs["results"]["lora"]
    assert result.returncode == 0, result.output[-3000:]
    prompts, answers = _expected(runs, runs["lora"], 24)
    _, base_answers = _expected(runs, "", 24)
    assert answers != base_answers  # the LoRA weights matter
    assert [line["predict"] for line in _lines(result)] == answers
    streamed = LOG_LINE.sub("", result.stdout)  # MindFormers may log while a graph compiles
    for answer in answers:  # batch 1: the streamed text is the answer, printed as it came
        assert answer + "\n" in streamed


def test_exported_graphs_give_the_model_logits(runs):
    from iflytekspark.inference.export import example_inputs, load_graph

    result = runs["results"]["export"]
    assert result.returncode == 0, result.output[-3000:]
    steps = _steps(runs, "")
    files = sorted(p.name for p in (result.cwd / "mindir").iterdir())
    assert files == ["decode_b2_c6.mindir", "prefill_b2_s10.mindir"]  # cache: min(10, window 6)
    rng = np.random.default_rng(0)
    tokens = ms_tensor(rng.integers(6, runs["vocab"], (2, 10)).astype(np.int32))
    prefill, _ = example_inputs(steps, _shape()).values()
    args = (tokens, prefill[1], prefill[2])
    graph = load_graph(result.cwd / "mindir" / "prefill_b2_s10.mindir")(*args)
    eager = steps.prefill(*args)
    full = steps.model.logits(tokens).asnumpy()[:, -1]
    np.testing.assert_allclose(graph[0].asnumpy(), full, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(graph[1].asnumpy(), eager[1].asnumpy(), rtol=1e-4, atol=1e-5)
    decode_args = (tokens[:, :1], prefill[1][:, :1], *example_inputs(steps, _shape())["decode"][2:])
    out = load_graph(result.cwd / "mindir" / "decode_b2_c6.mindir")(*decode_args)
    single = steps.model.logits(tokens[:, :1]).asnumpy()[:, -1]  # an empty cache: the token alone
    np.testing.assert_allclose(out[0].asnumpy(), single, rtol=1e-4, atol=1e-4)


def ms_tensor(x):
    from mindspore import Tensor

    return Tensor(x)


def _shape():
    from iflytekspark.inference.export import ExportShape

    return ExportShape(batch_size=2, prompt_length=10, max_length=10)
