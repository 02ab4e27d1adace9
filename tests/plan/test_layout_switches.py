"""Each parallel switch the plan offers is either rendered into the YAML (and implemented by the model:
tests/model/test_model_layouts.py builds it) or refused with the reason, naming ``parallel.<x>``; the
memory estimate counts the busiest pipeline stage."""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from orchestrator.errors import InputError, PlanError
from orchestrator.inventory.profiles import PROFILES
from orchestrator.plan.memory import estimate_memory
from orchestrator.plan.model_presets import PRESETS
from orchestrator.plan.planner import make_plan
from orchestrator.plan.strategy import KEYS, UNSUPPORTED, choose_strategy
from tests.plan.helpers import A2, CPU, make_inventory

TWO = ("10.0.0.1", "10.0.0.2")
ISSUE_16 = (
    ("parallel.dp", "2"),
    ("parallel.mp", "4"),
    ("parallel.pp", "2"),
    ("parallel.micro_batch_num", "4"),
)
M13 = PRESETS["13b"]


def _tree(overrides=(), hosts=("10.0.0.1",), model="13b", profile=A2):
    inv = make_inventory(profile, hosts=hosts, model=model, overrides=tuple(overrides), ips=profile != CPU)
    plan = make_plan(inv, "pretrain")
    return plan, yaml.safe_load(plan.nodes[0].yaml_text)


def test_issue_16_layout_renders_stages_micro_batches_and_offset():
    plan, tree = _tree(ISSUE_16 + (("parallel.offset", "[1,-1]"),), hosts=TWO)
    pc = tree["parallel_config"]
    assert (pc["data_parallel"], pc["model_parallel"], pc["pipeline_stage"], pc["micro_batch_num"]) == (
        2,
        4,
        2,
        4,
    )
    assert tree["model"]["model_config"]["offset"] == [1, -1]
    assert plan.memory.stage_layers == (21, 19)


@pytest.mark.parametrize(
    "key, value, path, expected",
    [
        ("parallel.optimizer_shard", "false", ("parallel", "enable_parallel_optimizer"), False),
        ("parallel.optimizer_shard", "false", ("parallel_config", "optimizer_shard"), False),
        ("parallel.vocab_emb_dp", "true", ("parallel_config", "vocab_emb_dp"), True),
        ("parallel.recompute", "false", ("recompute_config", "recompute"), False),
        ("parallel.micro_batch_interleave_num", "2", ("micro_batch_interleave_num",), 2),
        ("parallel.gradient_aggregation_group", "2", ("parallel_config", "gradient_aggregation_group"), 2),
    ],
)
def test_each_implemented_switch_is_rendered(key, value, path, expected):
    _, default = _tree(model="tiny")  # the 13B would not fit some of these on one node
    _, tree = _tree(((key, value),), model="tiny")
    node, base = tree, default
    for part in path:
        node, base = node[part], base[part]
    assert node == expected and base != expected


@pytest.mark.parametrize(
    "key", ["seq_parallel", "use_seq_parallel", "recompute_slice", "recompute_slice_activation"]
)
def test_switches_the_model_lacks_are_refused_naming_the_field(key):
    with pytest.raises(InputError) as err:
        _tree(((f"parallel.{key}", "true"),))
    problem = err.value.problems[0]
    assert problem.field == f"parallel.{key}"
    assert "does not implement" in problem.message and "false" in problem.fix
    _, tree = _tree(((f"parallel.{key}", "false"),))  # off is fine
    assert tree["parallel_config"]["use_seq_parallel"] is False


def test_unsupported_switches_are_never_rendered_on():
    assert set(UNSUPPORTED) == {"seq_parallel", "recompute_slice"}
    for profile in PROFILES.values():
        for task in profile.tasks:
            world = profile.layout_for(task).world
            st = choose_strategy(profile, task, world, M13)
            assert not st.seq_parallel and not st.recompute_slice, (profile.name, task)


def test_vocab_emb_dp_with_pipeline_is_refused():
    with pytest.raises(InputError) as err:
        _tree(ISSUE_16 + (("parallel.vocab_emb_dp", "true"),), hosts=TWO)
    assert err.value.problems[0].field == "parallel.vocab_emb_dp"
    assert "pipeline_stage > 1" in err.value.problems[0].message


@pytest.mark.parametrize(
    "offset, rule",
    [("[1,0]", "must sum to num_layers % pp = 40 % 2 = 0"), ("[1,2,-3]", "a list of pp = 2 ints"),
     ("[40,-40]", "leaves a stage without layers")],
)  # fmt: skip
def test_bad_offsets_name_the_rule(offset, rule):
    with pytest.raises(PlanError, match=rule.replace("%", "%").replace("[", r"\[")):
        _tree(ISSUE_16 + (("parallel.offset", offset),), hosts=TWO)


def test_uneven_layers_need_an_offset():
    over = (
        ("parallel.dp", "1"),
        ("parallel.mp", "4"),
        ("parallel.pp", "3"),
        ("parallel.micro_batch_num", "3"),
    )
    inv = make_inventory(A2, hosts=("10.0.0.1", "10.0.0.2"), devices=6, ips=False, overrides=over)
    with pytest.raises(PlanError, match=r"40 % pp 3 != 0 \(or give parallel.offset"):
        make_plan(inv, "pretrain")


def test_interleave_is_refused_on_cpu():
    with pytest.raises(PlanError, match="micro_batch_interleave_num > 1"):
        _tree((("parallel.micro_batch_interleave_num", "2"),), profile=CPU, model="tiny")


def test_every_strategy_key_is_a_switch_the_plan_handles():
    assert {"offset", "micro_batch_interleave_num", "use_seq_parallel", "pipeline_stage"} <= set(KEYS)


def test_memory_counts_the_busiest_stage():
    a2 = PROFILES[A2]
    base = choose_strategy(a2, "pretrain", 16, M13, {"dp": 2, "mp": 4, "pp": 2, "micro_batch_num": 4})
    even = estimate_memory(M13, base)
    assert even.stage_layers == (20, 20)
    # stage 0 holds 2 micro batches in flight (1F1B) of 20 layers, the last only one but the logits
    assert even.stage == 0 and even.logits_gb == 0
    last_heavy = estimate_memory(M13, replace(base, offset=(-8, 8)))
    assert last_heavy.stage_layers == (12, 28) and last_heavy.stage == 1 and last_heavy.logits_gb > 0
    assert last_heavy.total_gb > even.total_gb
    # pp 2 holds half the layers of pp 1 per device (plus the tied embedding on both ends)
    one = estimate_memory(M13, replace(base, dp=4, pp=1, micro_batch_num=1))
    assert one.stage_layers == (40,) and even.weights_gb < one.weights_gb
    # interleaving runs both halves of the batch in one graph: activations double
    inter = estimate_memory(M13, replace(base, micro_batch_interleave_num=2))
    assert inter.activations_gb > even.activations_gb


def test_layer_stages_split_like_mindformers():
    from iflytekspark.stages import StageError, layer_stages, stage_layer_counts

    assert layer_stages(4, 2) == [0, 0, 1, 1]
    assert layer_stages(5, 2, [1, 0]) == [0, 0, 0, 1, 1]
    assert stage_layer_counts(41, 2, [0, 1]) == [20, 21]
    assert stage_layer_counts(40, 4, [0, 1, 0, -1]) == [10, 11, 10, 9]
    with pytest.raises(StageError, match="must sum to"):
        stage_layer_counts(41, 2)
    with pytest.raises(StageError, match="a lone int must be 0"):
        stage_layer_counts(41, 2, 1)  # MindFormers would add it to every stage after checking it alone
