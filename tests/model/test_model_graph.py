"""GRAPH mode (what MindFormers' Trainer uses) gives the PyNative results and trains; float16 compute runs."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures.model import TINY

pytestmark = pytest.mark.mindspore


def _batch(ms, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, TINY["vocab_size"], (2, TINY["seq_length"] + 1)).astype(np.int32)
    mask = (rng.random(ids.shape) < 0.7).astype(np.int32)
    return ms.Tensor(ids), ms.Tensor(mask)


def test_graph_mode_equals_pynative_and_trains(tiny_model, ms_context, request):
    ms = ms_context
    ids, mask = _batch(ms)
    model = tiny_model(seed=7)
    model.set_train(True)
    eager_loss = float(model(ids, loss_mask=mask).asnumpy())
    model.set_train(False)
    eager_logits = model(ids[:, :-1]).asnumpy()

    request.getfixturevalue("graph_mode")
    model.set_train(False)
    np.testing.assert_allclose(model(ids[:, :-1]).asnumpy(), eager_logits, rtol=1e-5, atol=1e-5)

    from mindspore import nn

    net = nn.TrainOneStepCell(model, nn.AdamWeightDecay(model.trainable_params(), learning_rate=1e-2))
    net.set_train(True)
    losses = [float(net(ids, None, mask).asnumpy()) for _ in range(4)]
    assert losses[0] == pytest.approx(eager_loss, rel=1e-5)
    assert losses[-1] < losses[0]


def test_float16_compute_is_close_to_float32(tiny_model, ms_context):
    ids, _ = _batch(ms_context, 1)
    tokens = ids[:, :-1]
    ref, half = tiny_model(seed=2), tiny_model(seed=2, compute_type="float16")
    ref.set_train(False)
    half.set_train(False)
    assert half.transformer.transformer.layers[0].attention.q_proj.weight.dtype == ms_context.float16
    assert half.transformer.transformer.layers[0].layer_norm.gamma.dtype == ms_context.float32
    assert half.transformer.embedding.word_embeddings.embedding_table.dtype == ms_context.float32
    got = half(tokens).asnumpy()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref(tokens).asnumpy(), atol=0.05)
