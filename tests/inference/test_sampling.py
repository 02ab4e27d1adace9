"""Sampler and repetition penalty on plain numpy logits (no MindSpore)."""

from __future__ import annotations

import numpy as np
import pytest
from iflytekspark.errors import ConfigError
from iflytekspark.generation_config import GenerationConfig
from iflytekspark.inference.sampling import RepetitionPenalty, Sampler, best_ids, mask_beyond

LOGITS = np.array([[0.0, 3.0, 1.0, 2.9, -1.0], [5.0, 0.0, 0.0, 4.0, 4.5]], np.float32)


def draws(config: GenerationConfig, n: int = 400, seed: int = 0) -> np.ndarray:
    sample = Sampler(config, seed)
    return np.stack([sample(LOGITS) for _ in range(n)])  # (n, B)


def test_greedy_is_argmax_and_ignores_sampling_knobs():
    greedy = draws(GenerationConfig(), 5)
    assert (greedy == [1, 0]).all()
    # do_sample False forces top_k 1 whatever the other settings say
    assert (draws(GenerationConfig(do_sample=False, top_k=50, temperature=5.0), 5) == [1, 0]).all()
    assert (draws(GenerationConfig(do_sample=True, top_k=1, temperature=5.0), 5) == [1, 0]).all()


def test_seeded_and_reproducible():
    config = GenerationConfig(do_sample=True, top_k=0, temperature=3.0)
    assert (draws(config, seed=7) == draws(config, seed=7)).all()
    assert (draws(config, seed=7) != draws(config, seed=8)).any()


def test_top_k_keeps_the_k_best():
    seen = draws(GenerationConfig(do_sample=True, top_k=2, temperature=10.0))
    assert set(seen[:, 0]) == {1, 3}
    assert set(seen[:, 1]) == {0, 4}


def test_top_p_keeps_the_nucleus_with_the_right_frequencies():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    sample = Sampler(GenerationConfig(do_sample=True, top_k=0, top_p=0.7), seed=1)
    seen = np.array([sample(logits)[0] for _ in range(4000)])
    assert set(seen) == {0, 1}  # 0.5 < 0.7, 0.5 + 0.3 >= 0.7: the third is cut
    assert abs((seen == 0).mean() - 0.5 / 0.8) < 0.03


def test_temperature_sharpens_and_flattens():
    cold = draws(GenerationConfig(do_sample=True, top_k=0, temperature=0.01))
    hot = draws(GenerationConfig(do_sample=True, top_k=0, temperature=100.0))
    assert (cold == [1, 0]).all()
    assert len(set(hot[:, 0])) == 5


def test_bad_settings_are_named():
    with pytest.raises(ConfigError, match="temperature.*top_p"):
        Sampler(GenerationConfig(temperature=0.0, top_p=1.5))


def test_repetition_penalty_is_additive_and_progressive():
    penalty = RepetitionPenalty(batch=2, vocab=5, penalty=1.5, increase=0.25)
    both = np.array([True, True])
    penalty.update(np.array([1, 3]), both)
    penalty.update(np.array([1, 0]), np.array([True, False]))  # row 1 finished: not counted
    penalty.update(np.array([1, 3]), both)
    assert penalty.cache[0].tolist() == [0, 1.5 + 0.25 + 0.25, 0, 0, 0]
    assert penalty.cache[1].tolist() == [0, 0, 0, 1.5 + 0.25, 0]
    np.testing.assert_allclose(penalty.apply(LOGITS), LOGITS - penalty.cache)


def test_repetition_penalty_off_at_one():
    penalty = RepetitionPenalty(batch=2, vocab=5, penalty=1.0, increase=0.1)
    penalty.update(np.array([1, 3]), np.array([True, True]))
    assert (penalty.apply(LOGITS) == LOGITS).all()


def test_best_ids_orders_by_logit_then_id():
    logits = np.array([[1.0, 3.0, 3.0, 0.5, 2.0, 3.0]])
    for k in (1, 2, 3, 4, 6):
        assert best_ids(logits, k)[0].tolist() == [1, 2, 5, 4, 0, 3][:k]


@pytest.mark.parametrize(
    "config",
    [GenerationConfig(), GenerationConfig(do_sample=True, top_k=0, temperature=5.0)],
    ids=["greedy", "sampled"],
)
def test_ids_beyond_the_tokenizer_are_never_chosen(config):
    wide = np.tile(np.linspace(0.0, 9.0, 12, dtype=np.float32), (2, 1))  # the best ids are the last
    masked = mask_beyond(wide, 7)  # a tokenizer of 7 pieces under a model of 12
    assert np.isneginf(masked[:, 7:]).all() and (masked[:, :7] == wide[:, :7]).all()
    picks = np.stack([Sampler(config, seed)(masked) for seed in range(50)])
    assert picks.max() < 7
    assert mask_beyond(wide, None) is wide and mask_beyond(wide, 12) is wide
    with pytest.raises(ConfigError, match="limit 0"):
        mask_beyond(wide, 0)
