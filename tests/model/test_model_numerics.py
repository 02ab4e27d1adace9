"""The MindSpore model equals the independent NumPy implementation of the spec (PyNative, float32)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures.model import TINY, random_weights
from tests.model import numpy_reference as ref

pytestmark = pytest.mark.mindspore

REF_CFG = {**TINY}
TOL = {"rtol": 1e-5, "atol": 1e-5}


def _ids(seed: int, rows: int = 2, length: int = TINY["seq_length"] + 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, TINY["vocab_size"], (rows, length)).astype(np.int32)


def _loss_mask(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((2, TINY["seq_length"] + 1)) < 0.6).astype(np.int32)


def test_logits_match_numpy(tiny_model, ms_context):
    model = tiny_model(seed=1)
    model.set_train(False)
    ids = _ids(2)[:, :-1]
    got = model(ms_context.Tensor(ids)).asnumpy()
    want = ref.logits(random_weights(TINY, 1), REF_CFG, ids)
    assert got.shape == (2, TINY["seq_length"], TINY["vocab_size"])
    np.testing.assert_allclose(got, want, **TOL)


def test_window_changes_the_result(tiny_model, ms_context):
    """With the window as long as the sequence, logits differ: the window shorter than S is in effect."""
    ids = ms_context.Tensor(_ids(2)[:, :-1])
    short, full = tiny_model(seed=1), tiny_model(seed=1, sparse_local_size=TINY["seq_length"])
    short.set_train(False)
    full.set_train(False)
    a, b = short(ids).asnumpy(), full(ids).asnumpy()
    # Positions inside the first window see the same keys; later ones do not.
    np.testing.assert_allclose(a[:, : TINY["sparse_local_size"]], b[:, : TINY["sparse_local_size"]], **TOL)
    assert np.abs(a[:, -1] - b[:, -1]).max() > 1e-3


@pytest.mark.parametrize("alignment", ["labels", "reference"])
@pytest.mark.parametrize("with_mask", [True, False])
def test_training_loss_matches_numpy(tiny_model, ms_context, alignment, with_mask):
    model = tiny_model(seed=3, loss_mask_alignment=alignment)
    model.set_train(True)
    ids = _ids(4)
    ids[1, -3:] = TINY["pad_token_id"]  # a padded tail: excluded when no loss_mask is given
    mask = _loss_mask(5) if with_mask else None
    args = [ms_context.Tensor(ids)]
    kwargs = {"loss_mask": ms_context.Tensor(mask)} if with_mask else {}
    got = float(model(*args, **kwargs).asnumpy())
    want = ref.training_loss(random_weights(TINY, 3), REF_CFG, ids, mask, alignment)
    assert got == pytest.approx(want, rel=1e-5, abs=1e-5)


def test_alignments_differ(tiny_model, ms_context):
    ids, mask = ms_context.Tensor(_ids(4)), ms_context.Tensor(_loss_mask(5))
    losses = []
    for alignment in ("labels", "reference"):
        model = tiny_model(seed=3, loss_mask_alignment=alignment)
        model.set_train(True)
        losses.append(float(model(ids, loss_mask=mask).asnumpy()))
    assert abs(losses[0] - losses[1]) > 1e-4
