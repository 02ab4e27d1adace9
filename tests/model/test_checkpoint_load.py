"""Strict checkpoint loading: real .ckpt files written by mindspore.save_checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
from iflytekspark.checkpoint import expected_parameters, load_weights
from iflytekspark.errors import CheckpointError

from tests.fixtures.model import TINY

pytestmark = pytest.mark.mindspore

JUNK = {
    "transformer.transformer.layers.0.attention.slice_sparse_mask": np.ones((12, 12), np.float16),
    "transformer.transformer.layers.1.attention.key_past": np.zeros((1, 4, 12, 8), np.float16),
    "adam_m.transformer.transformer.layers.0.mlp.fc0.weight": np.ones((32, 32), np.float32),
    "global_step": np.array([10], np.int32),
}


def _tokens(ms):
    return ms.Tensor(np.arange(24, dtype=np.int32).reshape(2, 12) % TINY["vocab_size"])


def _save(ms, model, path, extra=None, drop=()):
    items = [{"name": p.name, "data": p} for p in model.get_parameters() if p.name not in drop]
    items += [{"name": k, "data": ms.Tensor(v)} for k, v in (extra or {}).items()]
    ms.save_checkpoint(items, str(path))
    return str(path)


def test_model_parameters_are_the_spec_table(tiny_config, ms_context):
    from iflytekspark.model import IFlytekSparkForCausalLM

    config = tiny_config()
    model = IFlytekSparkForCausalLM(config)
    got = {p.name: tuple(p.shape) for p in model.get_parameters()}
    assert got == expected_parameters(config)


def test_roundtrip_with_junk_keys_gives_identical_outputs(tiny_model, tiny_config, ms_context, tmp_path):
    from iflytekspark.model import IFlytekSparkForCausalLM

    source = tiny_model(seed=4)
    source.set_train(False)
    path = _save(
        ms_context, source, tmp_path / "tiny.ckpt", {**JUNK, "something.else": np.ones(3, np.float32)}
    )
    fresh = IFlytekSparkForCausalLM(tiny_config())
    fresh.set_train(False)
    report = load_weights(fresh, path)
    assert sorted(report.ignored) == sorted(JUNK)
    assert report.unexpected == ["something.else"]
    assert len(report.loaded) == len(expected_parameters(TINY)) and not report.missing
    np.testing.assert_array_equal(fresh(_tokens(ms_context)).asnumpy(), source(_tokens(ms_context)).asnumpy())


def test_checkpoint_name_or_path_loads_at_build(tiny_model, tiny_config, ms_context, tmp_path):
    from iflytekspark.model import IFlytekSparkForCausalLM

    source = tiny_model(seed=5)
    source.set_train(False)
    path = _save(ms_context, source, tmp_path / "tiny.ckpt", JUNK)
    built = IFlytekSparkForCausalLM(tiny_config(checkpoint_name_or_path=path))
    built.set_train(False)
    np.testing.assert_array_equal(built(_tokens(ms_context)).asnumpy(), source(_tokens(ms_context)).asnumpy())


def test_missing_and_mismatched_keys_are_all_named(tiny_model, tiny_config, ms_context, tmp_path):
    from iflytekspark.model import IFlytekSparkForCausalLM

    gone = ["transformer.transformer.layers.1.mlp.fc2.bias", "transformer.transformer.layernorm.beta"]
    source = tiny_model(seed=4)
    bad_shape = {"transformer.transformer.layers.0.attention.q_proj.bias": np.zeros(31, np.float32)}
    drop = gone + list(bad_shape)
    path = _save(ms_context, source, tmp_path / "bad.ckpt", bad_shape, drop=drop)
    fresh = IFlytekSparkForCausalLM(tiny_config())
    before = fresh.transformer.embedding.word_embeddings.embedding_table.asnumpy().copy()
    with pytest.raises(CheckpointError) as err:
        load_weights(fresh, path)
    assert sorted(err.value.missing) == sorted(gone)
    assert err.value.mismatched == (
        "transformer.transformer.layers.0.attention.q_proj.bias: checkpoint (31,) vs model (32,)",
    )
    for name in gone:
        assert name in str(err.value)
    # Nothing was loaded before the error.
    np.testing.assert_array_equal(
        fresh.transformer.embedding.word_embeddings.embedding_table.asnumpy(), before
    )
    report = load_weights(fresh, path, strict=False)
    assert sorted(report.missing) == sorted(gone) and len(report.mismatched) == 1


def test_float16_checkpoint_is_cast_to_parameter_dtype(tiny_config, ms_context):
    from iflytekspark.model import IFlytekSparkForCausalLM

    from tests.fixtures.model import random_weights

    weights = {k: v.astype(np.float16) for k, v in random_weights(TINY, 6).items()}
    model = IFlytekSparkForCausalLM(tiny_config())
    load_weights(model, weights)
    table = model.transformer.embedding.word_embeddings.embedding_table
    assert table.dtype == ms_context.float32
    np.testing.assert_array_equal(
        table.asnumpy(), weights["transformer.embedding.word_embeddings.embedding_table"].astype(np.float32)
    )
