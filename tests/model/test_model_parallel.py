"""Sharding strategies and the flash-attention switch (Ascend-only paths, checked for wiring on CPU)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures.model import TINY

pytestmark = pytest.mark.mindspore


def test_shard_sets_strategies_without_changing_stand_alone_results(tiny_model, ms_context):
    from mindformers.modules.transformer.transformer import TransformerOpParallelConfig

    parallel = TransformerOpParallelConfig(data_parallel=2, model_parallel=2, vocab_emb_dp=False)
    plain, sharded = tiny_model(seed=9), tiny_model(seed=9, parallel_config=parallel)
    layer = sharded.transformer.transformer.layers[1]
    assert layer.attention.q_proj.matmul.in_strategy == ((2, 1), (2, 1))  # column parallel
    assert layer.attention.out_proj.matmul.in_strategy == ((2, 2), (1, 2))  # row parallel
    assert layer.mlp.fc2.matmul.in_strategy == ((2, 2), (1, 2))
    assert layer.layer_norm.norm.in_strategy == ((2, 1, 1), (1,), (1,))
    assert sharded.transformer.embedding.word_embeddings.gather.in_strategy == ((2, 1), (2, 1))
    assert sharded.head.matmul.in_strategy == ((2, 1), (2, 1))
    tokens = ms_context.Tensor(np.arange(24, dtype=np.int32).reshape(2, 12))
    plain.set_train(False)
    sharded.set_train(False)
    np.testing.assert_array_equal(sharded(tokens).asnumpy(), plain(tokens).asnumpy())


def test_flash_attention_is_off_on_cpu_and_wired_for_ascend(tiny_config, ms_context):
    from iflytekspark.model import IFlytekSparkForCausalLM, flash_attention_enabled

    assert tiny_config().use_flash_attention is None
    assert not flash_attention_enabled(tiny_config())
    model = IFlytekSparkForCausalLM(tiny_config(use_flash_attention=True))
    attention = model.transformer.transformer.layers[0].attention
    flash = attention.flash.flash
    assert attention.use_flash and model.transformer.use_flash
    assert (flash.pre_tokens, flash.next_tokens, flash.sparse_mode) == (TINY["sparse_local_size"] - 1, 0, 4)
    assert flash.head_num == TINY["num_heads"]
    assert flash.scale_value == pytest.approx(1 / np.sqrt(TINY["hidden_size"] // TINY["num_heads"]))
    # The band mask is a constant, not a checkpointed parameter.
    assert all("mask" not in p.name for p in model.get_parameters())


@pytest.mark.parametrize(
    "soc, wanted, expected",
    [
        ("ascend910", None, False),  # Atlas 800 (910A): no FlashAttentionScore, never on by itself
        ("ascend910", False, False),
        ("ascend910", True, "error"),
        ("ascend910b", None, True),  # Atlas A2
        ("ascend910_93", None, True),  # Atlas A3
        ("ascend910b", False, False),  # the plan's YAML says so (Atlas 800I A2)
    ],
)
def test_flash_attention_follows_the_chip_and_the_yaml(
    tiny_config, ms_context, monkeypatch, soc, wanted, expected
):
    import mindspore as ms
    from iflytekspark import model as model_mod
    from iflytekspark.errors import ConfigError

    real = ms.get_context
    monkeypatch.setattr(
        model_mod.ms, "get_context", lambda key: "Ascend" if key == "device_target" else real(key)
    )
    monkeypatch.setattr(model_mod, "ascend_soc_version", lambda: soc)
    config = tiny_config(use_flash_attention=wanted)
    if expected == "error":
        with pytest.raises(ConfigError, match="910A"):
            model_mod.flash_attention_enabled(config)
    else:
        assert model_mod.flash_attention_enabled(config) is expected


def test_metric_outputs_feed_mindformers_perplexity(tiny_model, ms_context):
    from mindformers.core.metric.metric import PerplexityMetric

    model = tiny_model(seed=10)
    ids = ms_context.Tensor(
        np.random.default_rng(0).integers(1, TINY["vocab_size"], (2, 13)).astype(np.int32)
    )
    model.set_train(True)
    loss = float(model(ids).asnumpy())
    model.set_train(False)
    model.set_metric_outputs(True)
    logits, tokens, mask = model(ids)
    assert logits.shape == (2, 13, TINY["vocab_size"]) and mask.shape == (2, 13)
    metric = PerplexityMetric()
    metric.clear()
    metric.update(logits, tokens, mask)
    assert metric.eval()["loss"] == pytest.approx(loss, rel=1e-4)
