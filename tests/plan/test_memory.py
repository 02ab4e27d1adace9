"""Memory estimate of 13B: the reference layouts fit where the model runs them, Atlas 800 (no flash
attention, and neither sequence parallelism nor recompute slicing in the model) is refused with what
would fit, a tiny device is refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from orchestrator.errors import PlanError
from orchestrator.inventory.profiles import PROFILES
from orchestrator.plan.memory import (
    GB,
    _fitting,
    check_fits,
    estimate_memory,
    shorter_sequence,
    suggest_layouts,
)
from orchestrator.plan.model_presets import PRESETS
from orchestrator.plan.strategy import TRAIN_TASKS, choose_strategy

M13 = PRESETS["13b"]
A2, A800, CPU = PROFILES["atlas-800t-a2-64g"], PROFILES["atlas-800-32g"], PROFILES["cpu"]
A3, A2I32, A2I64 = PROFILES["atlas-900-a3-64g"], PROFILES["atlas-800i-a2-32g"], PROFILES["atlas-800i-a2-64g"]
WORLD = {A2.name: 8, A800.name: 16, A3.name: 16}
PREDICT_LENGTH = 512  # the plan's default job.predict_length


def _strategy(profile, task):
    world = WORLD[profile.name] if task in TRAIN_TASKS else profile.layouts[task].world
    return choose_strategy(profile, task, world, M13)


@pytest.mark.parametrize(
    "profile, task",
    [(p, t) for p in (A2, A3) for t in p.tasks]
    + [(p, t) for p in (A800, A2I32, A2I64) for t in ("predict", "predict_lora", "export")],
)
def test_reference_layouts_fit(profile, task):
    st = _strategy(profile, task)
    est = check_fits(M13, st, profile, infer_length=PREDICT_LENGTH)
    assert est.fits and est.total_gb <= profile.max_device_memory_gb[task]


@pytest.mark.parametrize("task", ["pretrain", "finetune", "lora", "eval"])
def test_atlas_800_reference_layouts_do_not_fit_13b_at_32k_without_flash_attention(task):
    st = _strategy(A800, task)
    with pytest.raises(PlanError) as err:
        check_fits(M13, st, A800)
    text = str(err.value)
    assert "dense attention (no flash attention)" in text
    assert "no layout of this profile fits this model" in text
    assert "a shorter sequence fits: seq_length" in text and "--set model.seq_length=" in text


def test_atlas_800_pretrain_counts_only_what_the_model_does():
    st = _strategy(A800, "pretrain")  # dp2 mp8 fp16
    assert A800.seq_parallel and A800.recompute_slice  # the reference's flags, kept as profile data ...
    assert not st.seq_parallel and not st.recompute_slice  # ... never planned: the model has neither
    est = estimate_memory(M13, st, flash_attention=A800.flash_attention)
    flash = estimate_memory(M13, st, flash_attention=True)
    # one layer recomputed in full holds the dense S x S scores: fp32 scores and probabilities plus
    # fp16 probabilities of 40/8 heads, (8 + 2) * 5 * 32768^2 bytes
    assert est.activations_gb - flash.activations_gb == pytest.approx(10 * 5 * 32768**2 / GB, rel=1e-3)
    # whole-layer recompute keeps 40 unsliced layer inputs (fp16), not 1/8 of them, plus one layer
    s, h, f = 32768, 5120, 14336
    layer = 2 * (4 * s * h + 4 * s * h / 8 + 4 * s * f / 8) + 8 * s * 40 / 8
    assert flash.activations_gb == pytest.approx((40 * s * h * 2 + layer) / GB, abs=1e-2)
    assert est.total_gb > 2 * est.budget_gb  # planned at 18 GB before, against a 31 GB budget
    seq, cand = shorter_sequence(M13, st, A800, flash=False)
    assert (seq, cand.pp) == (16384, 2) and estimate_memory(replace(M13, seq_length=seq), cand, False).fits


def test_eval_without_flash_attention_needs_more_model_parallel():
    st = _strategy(A2I64, "eval")  # dp1 mp1: whole 32K rows through dense attention
    with pytest.raises(PlanError, match="smallest that fits: dp1 mp8 pp1 on 8 device"):
        check_fits(M13, st, A2I64)
    assert check_fits(M13, _strategy(A2, "eval"), A2).fits  # the 800T A2 has flash attention


def test_dense_inference_is_counted_over_the_predict_length():
    st = _strategy(A800, "predict")
    short = estimate_memory(M13, st, False, infer_length=PREDICT_LENGTH)
    whole = estimate_memory(M13, st, False)  # a prompt of seq_length tokens
    assert short.kv_cache_gb == pytest.approx(2 * 40 * 512 * 5120 / 2 * 2 / GB, abs=1e-3)
    assert whole.activations_gb > 100 > short.activations_gb
    assert estimate_memory(M13, st, True) == whole  # the cached path never uses flash attention


def test_a2_pretrain_values():
    st = choose_strategy(A2, "pretrain", 8, M13)  # dp2 mp4, bf16, recompute, optimizer shard
    est = estimate_memory(M13, st)
    # bf16 matrices split over 4 devices: ~13.3e9 * 2 / 4 bytes; embedding fp32
    assert 6.0 < est.weights_gb < 6.6
    assert est.gradients_gb == est.weights_gb
    # fp32 m and v of the device's 3.33e9 parameters, halved by the dp-2 optimizer shard
    assert est.optimizer_gb == pytest.approx(8 * M13.num_params / 4 / 2 / GB, rel=0.01)
    # recompute keeps 40 layer inputs of s*h bf16 (unsliced) plus one layer
    assert est.activations_gb == est.activations_recompute_gb
    assert est.activations_recompute_gb == pytest.approx(40 * 32768 * 5120 * 2 / GB + 2.44, abs=0.1)
    assert est.activations_no_recompute_gb > 90  # would not fit without recompute
    assert est.logits_gb == pytest.approx(32768 * 60000 / 4 * 10 / GB, rel=1e-3)
    assert 40 < est.total_gb < 58


def test_optimizer_shard_divides_optimizer_state_by_dp():
    st = choose_strategy(A2, "pretrain", 16, M13)  # dp4 mp4
    shard, full = estimate_memory(M13, st), estimate_memory(M13, replace(st, optimizer_shard=False))
    assert full.optimizer_gb == pytest.approx(4 * shard.optimizer_gb, rel=1e-3)


def test_pipeline_splits_weights_and_keeps_micro_batches_in_flight():
    st = choose_strategy(A2, "pretrain", 8, M13)
    pp2 = choose_strategy(A2, "pretrain", 8, M13, {"dp": 1, "pp": 2, "micro_batch_num": 4})
    one, two = estimate_memory(M13, st), estimate_memory(M13, pp2)
    assert two.weights_gb < 0.6 * one.weights_gb
    assert two.activations_no_recompute_gb == pytest.approx(one.activations_no_recompute_gb, rel=0.01)


def test_lora_trains_only_adapters():
    st = choose_strategy(A2, "lora", 8, M13)
    est = estimate_memory(M13, st)
    assert est.gradients_gb < 0.05 and est.optimizer_gb < 0.05 and est.weights_gb > 12


def test_inference_has_kv_cache_and_no_training_state():
    est = estimate_memory(M13, choose_strategy(A2, "predict", 1, M13))  # no infer_length: seq_length
    assert est.gradients_gb == est.optimizer_gb == 0
    assert est.kv_cache_gb == pytest.approx(2 * 40 * 8192 * 5120 * 2 / GB, rel=1e-3)


def test_a_smaller_device_gets_a_same_size_layout_with_more_model_parallel():
    st = replace(choose_strategy(A2, "pretrain", 8, M13), max_device_memory_gb=40.0)
    with pytest.raises(PlanError) as err:
        check_fits(M13, st, A2)
    assert "GB more than max_device_memory 40 GB" in str(err.value)
    assert "with your devices: dp1 mp8 pp1 on 8 device(s)" in str(err.value)
    smallest, same = suggest_layouts(M13, st, A2)
    assert same.world == 8 and estimate_memory(M13, same).fits


def test_a_tiny_device_is_refused_with_the_smallest_layout_that_fits():
    st = replace(choose_strategy(A2, "pretrain", 8, M13), max_device_memory_gb=24.0)
    with pytest.raises(PlanError) as err:
        check_fits(M13, st, A2)
    text = str(err.value)
    assert "needs ~45.6 GB per device, 21.6 GB more than max_device_memory 24 GB" in text
    assert "smallest that fits: dp" in text and "with your devices" not in text
    smallest, same = suggest_layouts(M13, st, A2)
    assert same is None and estimate_memory(M13, smallest).fits
    assert all(_fitting(M13, st, A2, w, True) is None for w in range(1, smallest.world))


def test_no_recompute_refusal_mentions_recompute():
    st = choose_strategy(A2, "pretrain", 8, M13, {"recompute": False})
    with pytest.raises(PlanError, match="recompute would cut activations"):
        check_fits(M13, st, A2)


def test_13b_on_cpu_has_no_fitting_layout():
    st = choose_strategy(CPU, "pretrain", 2, M13)
    with pytest.raises(PlanError, match="no layout of this profile fits"):
        check_fits(M13, st, CPU, flash=False)
