"""Strategy rules: reference defaults, derivation from the world size, every refusal names its rule."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError, PlanError
from orchestrator.inventory.profiles import PROFILES, TASKS
from orchestrator.plan.model_presets import PRESETS, with_overrides
from orchestrator.plan.strategy import choose_strategy

M13 = PRESETS["13b"]
A2, A800, CPU = PROFILES["atlas-800t-a2-64g"], PROFILES["atlas-800-32g"], PROFILES["cpu"]


@pytest.mark.parametrize("profile", [A2, A800])
@pytest.mark.parametrize("task", TASKS)
def test_reference_layouts_are_the_default(profile, task):
    ref = profile.layouts[task]
    st = choose_strategy(profile, task, ref.world, M13)
    assert (st.dp, st.mp, st.pp) == (ref.dp, ref.mp, ref.pp)
    assert st.micro_batch_num == 1 and st.batch_size == 1
    assert st.vocab_emb_dp is False and st.gradient_aggregation_group == 4
    assert st.optimizer_shard is st.training


def test_profile_settings_follow_task_and_profile():
    a2 = choose_strategy(A2, "pretrain", 8, M13)
    assert (a2.compute_dtype, a2.seq_parallel, a2.recompute, a2.recompute_slice, a2.loss_scale) == (
        "bfloat16",
        False,
        True,
        False,
        "fixed",
    )
    a800 = choose_strategy(A800, "pretrain", 16, M13)
    # the reference's sequence parallel and slicing flags are not planned: the model has neither
    assert (a800.compute_dtype, a800.seq_parallel, a800.recompute_slice, a800.loss_scale) == (
        "float16",
        False,
        False,
        "dynamic",
    )
    infer = choose_strategy(A800, "predict", 2, M13)
    assert (infer.recompute, infer.seq_parallel, infer.optimizer_shard, infer.compute_dtype) == (
        False,
        False,
        False,
        "float16",
    )
    assert choose_strategy(A2, "lora", 8, M13).max_device_memory_gb == 59.0


def test_dp_is_derived_when_the_default_layout_does_not_match_the_world():
    st = choose_strategy(A2, "pretrain", 16, M13)  # two A2 nodes: mp 4 kept, dp 2 -> 4
    assert (st.dp, st.mp, st.pp) == (4, 4, 1)
    st = choose_strategy(A2, "predict", 8, M13)
    assert (st.dp, st.mp) == (8, 1)
    st = choose_strategy(CPU, "pretrain", 4, PRESETS["tiny"])
    assert (st.dp, st.mp, st.pp) == (4, 1, 1)


def test_overrides_set_the_layout():
    st = choose_strategy(A2, "pretrain", 8, M13, {"mp": 2, "pp": 2, "micro_batch_num": 4})
    assert (st.dp, st.mp, st.pp, st.micro_batch_num) == (2, 2, 2, 4)
    st = choose_strategy(A2, "pretrain", 8, M13, {"data_parallel": 1, "model_parallel": 8})
    assert (st.dp, st.mp) == (1, 8)


@pytest.mark.parametrize(
    "overrides, world, rule",
    [
        ({"dp": 3}, 8, "dp*mp*pp must equal the world size"),
        ({"mp": 3}, 6, "model parallel must divide num_heads"),
        ({"mp": 16}, 16, "model parallel must divide num_heads: 40 % mp 16"),
        ({"pp": 3, "micro_batch_num": 3}, 12, "pipeline stages must divide num_layers"),
        ({"pp": 2}, 8, "micro_batch_num must be >= pp"),
    ],
)
def test_invalid_layouts_name_the_rule(overrides, world, rule):
    with pytest.raises(PlanError, match=rule.replace("*", r"\*")):
        choose_strategy(A2, "pretrain", world, M13, overrides)


@pytest.mark.parametrize(
    "field, value, rule",
    [
        ("vocab_size", 60001, "vocab_size"),
        ("ffn_hidden_size", 28670, "ffn inner size"),
        ("hidden_size", 5122, "hidden_size"),
    ],
)
def test_mp_must_divide_vocab_hidden_and_ffn(field, value, rule):
    model = with_overrides(M13, {field: value})
    with pytest.raises(PlanError, match=f"model parallel must divide {rule}"):
        choose_strategy(A2, "pretrain", 8, model)


def test_world_not_divisible_by_the_reference_replica_is_refused():
    with pytest.raises(PlanError, match="dp\\*mp\\*pp must equal the world size: 2\\*4\\*1 = 8 != 6"):
        choose_strategy(A2, "pretrain", 6, M13)


def test_cpu_is_data_parallel_only():
    with pytest.raises(PlanError, match="data parallel only"):
        choose_strategy(CPU, "pretrain", 2, PRESETS["tiny"], {"mp": 2})
    with pytest.raises(PlanError, match="computes in float32"):
        choose_strategy(CPU, "pretrain", 2, PRESETS["tiny"], {"compute_dtype": "float16"})


def test_pipeline_is_for_training_only():
    with pytest.raises(PlanError, match="training only"):
        choose_strategy(A2, "predict", 2, M13, {"pp": 2, "micro_batch_num": 2})


@pytest.mark.parametrize(
    "key, value", [("dp", 0), ("mp", "two"), ("recompute", 1), ("zz", 1), ("compute_dtype", "int8")]
)
def test_bad_override_values_are_input_errors(key, value):
    with pytest.raises(InputError, match=f"parallel.{key}"):
        choose_strategy(A2, "pretrain", 8, M13, {key: value})
