"""Every rendered YAML (all tasks x all profiles) loads with MindFormers' own config class; for the tiny
preset on CPU, MindFormers' registry builds the model (LoRA included) from the YAML's model section."""

from __future__ import annotations

import pytest

from orchestrator.inventory.profiles import PROFILES, TASKS
from orchestrator.plan.launch_env import RUN_MODES
from orchestrator.plan.plan_io import write_plan
from orchestrator.plan.planner import make_plan
from tests.plan.helpers import A800_SHORT, CPU, a3_discovery, make_inventory

pytestmark = pytest.mark.mindspore


def _yaml_run_mode(task: str) -> str:
    return "predict" if task == "export" else RUN_MODES[task]  # MindFormers has no export run_mode


def _inventory(profile: str):
    if profile == CPU:
        return make_inventory(CPU, hosts=("127.0.0.1",), devices=2, ips=False, model="tiny")
    return make_inventory(
        profile,
        hosts=("10.0.0.1", "10.0.0.2"),
        load_checkpoint="/ckpt/13b",
        train_dataset="/data/train.mindrecord",
        # without flash attention 13B rows of 32K tokens fit no layout (dense S x S scores)
        overrides=() if PROFILES[profile].flash_attention else A800_SHORT,
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """{(profile, task): path of node 0's YAML}, written through the plan folder. Runs in a temporary
    folder: MindFormers' logger writes ./output/log."""
    mp = pytest.MonkeyPatch()
    mp.chdir(tmp_path_factory.mktemp("cwd"))
    out = {}
    for profile in sorted(PROFILES):
        for task in PROFILES[profile].tasks:
            folder = tmp_path_factory.mktemp(f"{profile}-{task}")
            inv = _inventory(profile)
            found = a3_discovery(inv) if PROFILES[profile].rank_table_version == "1.2" else None
            plan = make_plan(inv, task, discovered=found)
            write_plan(plan, folder)
            out[(profile, task)] = folder / "nodes" / plan.nodes[0].host / f"{task}.yaml"
    yield out
    mp.undo()


def test_every_rendered_yaml_loads_with_mindformer_config(rendered):
    from mindformers.tools.register import MindFormerConfig

    for (profile, task), path in rendered.items():
        cfg = MindFormerConfig(str(path))
        assert cfg.run_mode == _yaml_run_mode(task), (profile, task)
        assert cfg.model.arch.type == "IFlytekSparkForCausalLM"
        assert cfg.model.model_config.type == "IFlytekSparkConfig"
        assert cfg.context.device_target == ("CPU" if profile == CPU else "Ascend")
        assert cfg.model.model_config.use_flash_attention is PROFILES[profile].flash_attention
        if task in ("pretrain", "finetune", "lora"):
            assert cfg.parallel_config.optimizer_shard is (profile != CPU)
            assert cfg.runner_wrapper.type == "SparkTrainOneStepCell"


@pytest.mark.parametrize("task", TASKS)
def test_the_tiny_model_builds_through_the_registry(rendered, task):
    from mindformers.tools.register import MindFormerConfig

    registry = pytest.importorskip("iflytekspark.registry")
    cfg = MindFormerConfig(str(rendered[(CPU, task)]))
    net = registry.build_from_yaml_dict(cfg.model)
    names = {p.name for p in net.get_parameters()}
    assert "transformer.embedding.word_embeddings.embedding_table" in names
    lora = {n for n in names if "mindpet_delta_lora" in n}
    assert bool(lora) == task.endswith("lora")
    assert len([n for n in names if n.endswith("q_proj.weight")]) == cfg.model.model_config.num_layers
