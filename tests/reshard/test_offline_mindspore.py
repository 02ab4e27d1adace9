"""Merging and resharding real checkpoints with MindSpore's own transform (CPU, file operations only).

A tiny iFlytekSpark (vocab 96 so mp 2 divides it) is cut into model-parallel-2 shards by an independent
NumPy splitter, with strategy files written by MindSpore's protobuf classes; two saved steps per rank,
named as MindFormers names them, so picking by name (``-1_5`` after ``-1_10``) would be wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.model import TINY, random_weights
from tests.reshard.sharding import save, split, write_strategy

pytestmark = pytest.mark.mindspore

SIZES = {**TINY, "vocab_size": 96}
OLD, NEW = 1, 2  # weight seeds of steps 1_5 and 1_10


def _ckpt(rank: int, step: str) -> str:
    return f"iFlytekSpark_tiny_rank_{rank}-{step}.ckpt"


@pytest.fixture(scope="module")
def mp2_job(tmp_path_factory, ms_context) -> Path:
    """A pulled mp2 job folder: checkpoint/rank_R/ (steps 1_5, 1_10, optimizer state) and strategy/."""
    job = tmp_path_factory.mktemp("mp2_job")
    for seed, step in ((OLD, "1_5"), (NEW, "1_10")):
        full = random_weights(SIZES, seed)
        full.update({f"adam_m.{n}": a * 0 + 0.5 for n, a in full.items() if n.endswith("bias")})
        for rank, shards in enumerate(split(full, 1, 2)):
            shards["global_step"] = np.array([10], np.int32)
            save(ms_context, shards, job / "checkpoint" / f"rank_{rank}" / _ckpt(rank, step))
    names = list(random_weights(SIZES, 0))
    for rank in range(2):
        write_strategy(job / "strategy" / f"ckpt_strategy_rank_{rank}.ckpt", names, 1, 2)
    return job


def _logits(ms, source) -> np.ndarray:
    from iflytekspark.checkpoint import load_weights
    from iflytekspark.config import IFlytekSparkConfig
    from iflytekspark.model import IFlytekSparkForCausalLM

    model = IFlytekSparkForCausalLM(IFlytekSparkConfig(**{**SIZES, "compute_type": "float32"}))
    load_weights(model, source)
    model.set_train(False)
    tokens = np.random.default_rng(0).integers(1, SIZES["vocab_size"], (2, SIZES["seq_length"]))
    return model(ms.Tensor(tokens.astype(np.int32))).asnumpy()


def test_merge_mp2_gives_the_complete_checkpoint_of_the_newest_step(mp2_job, ms_context, tmp_path):
    from orchestrator.reshard.transform import merge

    result = merge(mp2_job, tmp_path / "merged.ckpt")
    assert (result.step, result.mode, result.world) == ("1_10", "strategy", 2)
    got = ms_context.load_checkpoint(str(result.out))
    want = random_weights(SIZES, NEW)
    assert sorted(got) == sorted(want)  # optimizer state and global_step dropped
    for name, value in want.items():
        np.testing.assert_array_equal(got[name].asnumpy(), value, err_msg=name)
    np.testing.assert_allclose(
        _logits(ms_context, str(result.out)), _logits(ms_context, want), rtol=0, atol=0
    )


def test_reshard_complete_to_mp2_and_back(mp2_job, ms_context, tmp_path):
    from orchestrator.reshard.transform import reshard

    full = random_weights(SIZES, NEW)
    complete = save(ms_context, full, tmp_path / "full.ckpt")
    files = reshard(complete, tmp_path / "mp2", mp2_job / "strategy")
    assert sorted(files) == [0, 1]
    for rank, want in enumerate(split(full, 1, 2)):
        got = ms_context.load_checkpoint(str(files[rank]))
        assert files[rank].parent.name == f"rank_{rank}" and sorted(got) == sorted(want)
        for name, value in want.items():
            np.testing.assert_array_equal(got[name].asnumpy(), value, err_msg=f"rank {rank} {name}")


def test_reshard_mp2_to_mp1_at_an_older_step_keeps_everything(mp2_job, ms_context, tmp_path):
    from orchestrator.reshard.transform import reshard

    back = reshard(mp2_job, tmp_path / "mp1", None, step="1_5")
    got = ms_context.load_checkpoint(str(back[0]))
    assert sorted(back) == [0] and "global_step" in got and any(n.startswith("adam_m.") for n in got)
    for name, value in random_weights(SIZES, OLD).items():
        np.testing.assert_array_equal(got[name].asnumpy(), value, err_msg=name)


def test_replicated_ranks_merge_to_rank_0_and_disagreeing_ranks_are_refused(ms_context, tmp_path):
    from orchestrator.reshard.transform import ReshardError, merge

    full = random_weights(SIZES, 3)
    for rank in range(2):
        save(ms_context, full, tmp_path / "dp" / f"rank_{rank}" / _ckpt(rank, "1_4"))
    result = merge(tmp_path / "dp", tmp_path / "dp.ckpt", weights_only=False)  # identical: a plain copy
    assert (result.mode, result.step) == ("replicated", "1_4")
    got = ms_context.load_checkpoint(str(result.out))
    np.testing.assert_array_equal(
        got["transformer.transformer.layernorm.gamma"].asnumpy(),
        full["transformer.transformer.layernorm.gamma"],
    )
    full["transformer.transformer.layernorm.gamma"][0] += 1
    save(ms_context, full, tmp_path / "dp" / "rank_1" / _ckpt(1, "1_4"))
    with pytest.raises(ReshardError, match="layernorm.gamma"):
        merge(tmp_path / "dp", tmp_path / "bad.ckpt")
