"""Every layout switch the planner offers, as the Ascend graph would get it: plans of the tiny model on
Atlas 800T A2 nodes, their YAMLs built (not run) by one MindSpore subprocess under semi-auto parallel
(tests/model/layout_probe.py): pipeline stages of the cells, shard strategies of the operators,
gradient fusion and parallel-optimizer flags of the parameters, recompute, the Trainer's wrappers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.plan.plan_io import write_plan
from orchestrator.plan.planner import make_plan
from tests.plan.helpers import A2, make_inventory

pytestmark = pytest.mark.mindspore

ROOT = Path(__file__).resolve().parents[2]
LAYER = "transformer.transformer.layers.{}"
LAYOUTS = {
    # data parallel over 8 cards, no recompute
    "dp": (1, (("parallel.dp", "8"), ("parallel.mp", "1"), ("parallel.recompute", "false"))),
    # the reference mp4 with the other switches flipped: vocab replicated, optimizer not sharded, interleave
    "mp": (
        1,
        (
            ("parallel.vocab_emb_dp", "true"),
            ("parallel.optimizer_shard", "false"),
            ("parallel.micro_batch_interleave_num", "2"),
        ),
    ),
    # issue 16's layout on two nodes, 5 layers split 3 + 2 by an offset
    "pp": (
        2,
        (
            ("parallel.dp", "2"),
            ("parallel.mp", "4"),
            ("parallel.pp", "2"),
            ("parallel.micro_batch_num", "4"),
            ("model.num_layers", "5"),
            ("parallel.offset", "[1,0]"),
        ),
    ),
}


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    paths = {}
    for name, (nodes, overrides) in LAYOUTS.items():
        hosts = tuple(f"10.0.0.{i + 1}" for i in range(nodes))
        plan = make_plan(make_inventory(A2, hosts=hosts, model="tiny", overrides=overrides), "pretrain")
        folder = tmp_path_factory.mktemp(name)
        write_plan(plan, folder)
        paths[name] = str(folder / "nodes" / hosts[0] / "pretrain.yaml")
    cwd = tmp_path_factory.mktemp("cwd")  # MindFormers' logger writes ./output/log
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "tests.model.layout_probe", *paths.values()],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: out[path] for name, path in paths.items()}


def test_pipeline_stages_follow_mindformers_layer_split(probed):
    got = probed["pp"]
    assert got["context"]["pipeline_stages"] == 2 and got["context"]["parallel_mode"] == "semi_auto_parallel"
    stages = got["stages"]
    assert stages["transformer.embedding"] == 0  # the lookup on the first stage
    assert [stages[LAYER.format(i)] for i in range(5)] == [0, 0, 0, 1, 1]  # 5 // 2 + offset [1, 0]
    assert stages["transformer.transformer.layernorm"] == 1  # final LayerNorm, head and loss on the last
    assert stages["head"] == 1 and stages["loss"] == 1
    # the tied table is the one parameter both ends use; the head has none of its own
    names = set(got["params"])
    assert "transformer.embedding.word_embeddings.embedding_table" in names
    assert not any(n.startswith("head.") for n in names)
    # with pp > 1 every gradient fuses in group 2, as LLaMA's LayerSetting does
    assert {fusion for fusion, _ in got["params"].values()} == {2}


def test_the_trainer_wraps_pipelines_and_interleave_itself(probed):
    assert probed["pp"]["wrappers"] == ["_VirtualDatasetCell", "PipelineCell(4)"]
    assert probed["pp"]["runner_wrapper"] == "MFPipelineWithLossScaleCell"  # MindFormers replaces ours
    assert probed["mp"]["wrappers"] == ["_VirtualDatasetCell", "MicroBatchInterleaved(2)"]
    assert probed["mp"]["runner_wrapper"] == "SparkTrainOneStepCell"
    assert probed["dp"]["wrappers"] == ["_VirtualDatasetCell"]


def test_model_parallel_strategies(probed):
    s = probed["pp"]["strategies"]
    layer = LAYER.format(3)
    assert s[f"{layer}.attention.q_proj.matmul"] == [[2, 1], [4, 1]]  # column parallel
    assert s[f"{layer}.attention.out_proj.matmul"] == [[2, 4], [1, 4]]  # row parallel
    assert s[f"{layer}.mlp.fc0.matmul"] == [[2, 1], [4, 1]]
    assert s[f"{layer}.mlp.fc2.matmul"] == [[2, 4], [1, 4]]
    assert s[f"{layer}.mlp.gelu"] == [[2, 1, 4]]
    assert s[f"{layer}.layer_norm.norm"] == [[2, 1, 1], [1], [1]]
    # vocab_emb_dp false: the table's rows split over mp, in the lookup and the tied head
    assert s["transformer.embedding.word_embeddings.gather"] == [[4, 1], [2, 1]]
    assert s["head.matmul"] == [[2, 1], [4, 1]]
    assert s["loss.max"] == [[2, 4]]


def test_data_parallel_strategies_and_no_recompute(probed):
    got = probed["dp"]
    s = got["strategies"]
    assert s[f"{LAYER.format(0)}.attention.q_proj.matmul"] == [[8, 1], [1, 1]]
    assert s["transformer.embedding.word_embeddings.gather"] == [[1, 1], [8, 1]]
    assert s["head.matmul"] == [[8, 1], [1, 1]]
    assert got["recompute"] == []
    assert got["context"]["pipeline_stages"] == 1


def test_vocab_emb_dp_optimizer_shard_and_recompute(probed):
    mp, pp = probed["mp"], probed["pp"]
    assert mp["vocab_emb_dp"] is True
    assert mp["strategies"]["transformer.embedding.word_embeddings.gather"] == [[1, 1], [2, 1]]
    assert mp["strategies"]["head.matmul"] == [[2, 1], [1, 1]]  # as LLaMA's lm_head under vocab_emb_dp
    assert mp["context"]["enable_parallel_optimizer"] is False
    assert pp["context"]["enable_parallel_optimizer"] is True
    assert all(shard for _, shard in pp["params"].values())  # every parameter open to the optimizer shard
    # pp 1: layers spread over gradient_aggregation_group fusion groups, embedding and LayerNorm in the last
    fusion = {n: f for n, (f, _) in mp["params"].items()}
    assert fusion[f"{LAYER.format(0)}.attention.q_proj.weight"] == 1
    assert fusion[f"{LAYER.format(1)}.attention.q_proj.weight"] == 2
    assert fusion["transformer.embedding.word_embeddings.embedding_table"] == 4
    assert mp["recompute"] == [LAYER.format(0), LAYER.format(1)]
    assert pp["recompute"] == [LAYER.format(i) for i in range(5)]


@pytest.mark.parametrize(
    "num_layers, pp, offset",
    [
        (40, 1, 0),
        (40, 2, 0),
        (40, 2, [1, -1]),
        (40, 4, [0, 1, 0, -1]),
        (5, 2, [1, 0]),
        (41, 2, [0, 1]),
        (40, 8, 0),
    ],
)
def test_layer_split_equals_mindformers_layer_setting(ms_context, num_layers, pp, offset):
    from iflytekspark.stages import layer_stages
    from mindformers.modules.transformer.transformer import TransformerOpParallelConfig
    from mindformers.parallel_core.training_graph.transformer.utils import LayerSetting

    setting = LayerSetting(num_layers, offset, TransformerOpParallelConfig(pipeline_stage=pp))
    assert layer_stages(num_layers, pp, offset) == [int(s) for s in setting.pp_ids]


def test_config_refuses_an_offset_that_does_not_split_the_layers(tiny_config):
    from iflytekspark.errors import ConfigError
    from mindformers.modules.transformer.transformer import TransformerOpParallelConfig

    pp2 = TransformerOpParallelConfig(pipeline_stage=2)
    assert tiny_config(num_layers=5, offset=[1, 0], parallel_config=pp2).offset == [1, 0]
    with pytest.raises(ConfigError, match=r"must sum to num_layers % pp = 5 % 2 = 1"):
        tiny_config(num_layers=5, parallel_config=pp2)
    with pytest.raises(ConfigError, match="a list of pp = 2 ints"):
        tiny_config(offset=[0, 0, 0], parallel_config=pp2)
