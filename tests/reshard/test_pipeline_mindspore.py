"""Pipeline-sharded checkpoints (pp 2 x mp 2): each stage's ranks hold only their stage's parameters, as
the model places them (docs/model.md §9: the embedding on stage 0, layer i on its stage, the final
LayerNorm and the tied head, hence the embedding table again, on the last). Merged to one complete
checkpoint and resharded back with MindSpore's own transform (the stage files merged first)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.model import TINY, random_weights
from tests.reshard.sharding import save, split, write_strategy

pytestmark = pytest.mark.mindspore

SIZES = {**TINY, "vocab_size": 96}  # 2 layers: layer 0 on stage 0, layer 1 on stage 1
PP, MP = 2, 2
TABLE = "transformer.embedding.word_embeddings.embedding_table"


def stage_names(names, stage: int) -> list:
    """The parameters stage ``stage`` of 2 uses (iflytekspark.stages: one layer each)."""
    from iflytekspark.stages import layer_stages

    stages = layer_stages(SIZES["num_layers"], PP)
    out = []
    for name in names:
        if name == TABLE:
            keep = True  # lookup on the first stage, tied head on the last
        elif ".layers." in name:
            keep = stages[int(name.split(".layers.")[1].split(".")[0])] == stage
        else:
            keep = stage == PP - 1  # the final LayerNorm
        if keep:
            out.append(name)
    return out


def _strategies(folder: Path, names) -> Path:
    for stage in range(PP):
        for local in range(MP):
            rank = stage * MP + local
            write_strategy(
                folder / f"ckpt_strategy_rank_{rank}.ckpt", stage_names(names, stage), 1, MP, stage
            )
    return folder


@pytest.fixture(scope="module")
def pp_job(tmp_path_factory, ms_context) -> Path:
    """A pulled pp2 x mp2 job folder: checkpoint/rank_R/ (only R's stage) and strategy/."""
    job = tmp_path_factory.mktemp("pp2_job")
    full = random_weights(SIZES, 4)
    shards = split(full, 1, MP)
    for stage in range(PP):
        for local in range(MP):
            rank = stage * MP + local
            mine = {n: shards[local][n] for n in stage_names(full, stage)}
            save(
                ms_context,
                mine,
                job / "checkpoint" / f"rank_{rank}" / f"iFlytekSpark_tiny_rank_{rank}-1_4.ckpt",
            )
    _strategies(job / "strategy", list(full))
    return job


def test_stages_hold_only_their_parameters():
    names = list(random_weights(SIZES, 0))
    first, last = stage_names(names, 0), stage_names(names, 1)
    assert TABLE in first and TABLE in last
    assert all(".layers.1." not in n for n in first) and all(".layers.0." not in n for n in last)
    assert "transformer.transformer.layernorm.gamma" in last and set(first) | set(last) == set(names)


def test_merge_a_pipeline_checkpoint(pp_job, ms_context, tmp_path):
    from orchestrator.reshard.transform import merge

    result = merge(pp_job, tmp_path / "merged.ckpt")
    assert (result.mode, result.world, result.step) == ("strategy", PP * MP, "1_4")
    got = ms_context.load_checkpoint(str(result.out))
    want = random_weights(SIZES, 4)
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        np.testing.assert_array_equal(got[name].asnumpy(), value, err_msg=name)


def test_reshard_complete_into_pipeline_stages_and_back(ms_context, tmp_path):
    from orchestrator.reshard.transform import reshard

    full = random_weights(SIZES, 5)
    complete = save(ms_context, full, tmp_path / "full.ckpt")
    strategy = _strategies(tmp_path / "strategy", list(full))
    files = reshard(complete, tmp_path / "pp2", strategy)
    assert sorted(files) == list(range(PP * MP))
    shards = split(full, 1, MP)
    for rank, path in files.items():
        stage, local = divmod(rank, MP)
        got = ms_context.load_checkpoint(str(path))
        assert sorted(got) == sorted(stage_names(full, stage)), rank
        for name in got:
            np.testing.assert_array_equal(
                got[name].asnumpy(), shards[local][name], err_msg=f"rank {rank} {name}"
            )
    back = reshard(tmp_path / "pp2", tmp_path / "back", None, strategy=strategy)
    got = ms_context.load_checkpoint(str(back[0]))
    assert sorted(got) == sorted(full)
    for name, value in full.items():
        np.testing.assert_array_equal(got[name].asnumpy(), value, err_msg=name)
