"""What the hardware profile decides in a plan: flash attention in the YAML, the Atlas 800 warning and
its honest memory refusal, inference-only Atlas 800I A2, and the v1.2 rank table of Atlas A3."""

from __future__ import annotations

import json

import pytest
import yaml

from orchestrator.errors import InputError, PlanError
from orchestrator.plan.planner import make_plan
from tests.plan.helpers import A2, A800, A800_SHORT, a3_discovery, make_inventory

A2I32, A2I64, A3 = "atlas-800i-a2-32g", "atlas-800i-a2-64g", "atlas-900-a3-64g"
TWO = ("10.0.0.1", "10.0.0.2")


def _model_config(plan, node=0) -> dict:
    return yaml.safe_load(plan.nodes[node].yaml_text)["model"]["model_config"]


@pytest.mark.parametrize("task", ["pretrain", "lora", "predict", "export", "eval"])
def test_atlas_800_never_gets_flash_attention_and_says_910a_is_unsupported(task):
    plan = make_plan(make_inventory(A800, hosts=TWO, overrides=A800_SHORT, load_checkpoint="/c"), task)
    assert all(_model_config(plan, i)["use_flash_attention"] is False for i in range(len(plan.nodes)))
    note = next(w for w in plan.warnings if "does not support Atlas 800" in w)
    assert "MindFormers 1.7.0 / MindSpore 2.7.1 / CANN 8.3.RC1" in note and "910A" in note


def test_a2_gets_flash_attention_and_no_support_warning():
    plan = make_plan(make_inventory(A2), "pretrain")
    assert _model_config(plan)["use_flash_attention"] is True
    assert not any("does not support" in w for w in plan.warnings)
    short = ["model.seq_length=8192"]
    off = make_plan(make_inventory(A2), "pretrain", short + ["model.use_flash_attention=false"])
    assert _model_config(off)["use_flash_attention"] is False
    on = make_plan(make_inventory(A2), "pretrain", short)
    assert off.memory.activations_gb > on.memory.activations_gb  # dense scores counted when off


def test_asking_for_flash_attention_on_atlas_800_is_refused():
    with pytest.raises(PlanError, match="FlashAttentionScore operator exists on Atlas A2/A3"):
        make_plan(make_inventory(A800, hosts=TWO), "predict", ["model.use_flash_attention=true"])


def test_atlas_800_13b_pretrain_at_32k_is_refused_with_what_fits():
    with pytest.raises(PlanError) as err:
        make_plan(make_inventory(A800, hosts=TWO), "pretrain")
    text = str(err.value)
    assert "pretrain with dp2 mp8 pp1 needs ~80.0 GB per device" in text
    assert "max_device_memory 31 GB" in text and "dense attention" in text
    # per pipeline stage: two stages of 20 layers each fit 16K rows (the last holds the logits)
    assert "--set model.seq_length=16384" in text and "dp1 mp8 pp2" in text


@pytest.mark.parametrize("profile", [A2I32, A2I64])
@pytest.mark.parametrize("task", ["pretrain", "finetune", "lora"])
def test_atlas_800i_a2_refuses_training_with_the_reason(profile, task):
    with pytest.raises(PlanError) as err:
        make_plan(make_inventory(profile), task)
    text = str(err.value)
    assert f"runs predict, predict_lora, export, eval only, not {task}" in text
    assert "inference server" in text and "atlas-800t-a2-64g" in text


def test_atlas_800i_a2_32g_predicts_on_two_cards_without_flash_attention():
    plan = make_plan(make_inventory(A2I32, devices=2), "predict")
    tree = yaml.safe_load(plan.nodes[0].yaml_text)
    assert (plan.strategy.dp, plan.strategy.mp) == (1, 2)
    assert tree["context"]["max_device_memory"] == "29GB"
    assert tree["model"]["model_config"]["use_flash_attention"] is False
    assert plan.memory.fits and plan.memory.total_gb < 29


def test_a3_plan_writes_a_v12_table_with_super_device_ids_from_discovery():
    inv = make_inventory(A3, hosts=TWO, devices=16, ips=False)
    plan = make_plan(inv, "pretrain", discovered=a3_discovery(inv, super_pod_id="7"))
    table = json.loads(plan.rank_table_text)
    assert table["version"] == "1.2" and table["server_count"] == "2"
    assert table["super_pod_list"] == [
        {"super_pod_id": "7", "server_list": [{"server_id": "10.0.0.1"}, {"server_id": "10.0.0.2"}]}
    ]
    first, second = table["server_list"]
    assert first["host_ip"] == "10.0.0.1" and len(first["device"]) == 16
    assert first["device"][3] == {
        "device_id": "3",
        "device_ip": "192.168.20.4",
        "rank_id": "3",
        "super_device_id": str(1 << 18 | 1 << 16 | 3),  # NPU 1, die 1, device 3 of server 0
    }
    assert second["device"][0]["super_device_id"] == str(1 << 22) and second["device"][0]["rank_id"] == "16"
    assert (plan.strategy.dp, plan.strategy.mp) == (8, 4) and plan.world_size == 32
    assert _model_config(plan)["use_flash_attention"] is True


def test_a3_plan_without_discovery_names_the_fix():
    inv = make_inventory(A3, devices=16, ips=False)
    with pytest.raises(InputError) as err:
        make_plan(inv, "predict", ["parallel.dp=16"], discovered=None)
    assert any("--discover" in p.fix and "super device id" in p.message for p in err.value.problems)
