"""The tiny model trains through MindFormers' Trainer from a YAML (``python -m iflytekspark.run``) on CPU:
loss falls, checkpoints land in rank_0/, resume continues the step count, SFT uses loss_mask, LoRA
changes only LoRA parameters. One run per fixture, shared by the assertions."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.fixtures.train import STEP_LINE

pytestmark = pytest.mark.mindspore


@pytest.fixture(scope="module")
def runs(followup_runs):
    for name, result in followup_runs.items():
        assert result.proc.returncode == 0, f"{name} run failed:\n{result.output[-3000:]}"
    return followup_runs


def load(path):
    import mindspore as ms

    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items() if v.dtype != ms.bfloat16}


def mean(xs):
    return sum(xs) / len(xs)


def test_pretraining_loss_falls_and_steps_are_logged(pretrain_run):
    steps = pretrain_run.steps()
    assert len(steps) >= 20
    assert [s for _, s, _ in steps] == list(range(1, len(steps) + 1))
    losses = [loss for _, _, loss in steps]
    assert all(math.isfinite(x) for x in losses)
    assert mean(losses[-5:]) < mean(losses[:5]) - 0.5
    assert "lr: " in pretrain_run.output and "global_norm: " in pretrain_run.output
    log = (pretrain_run.cwd / "output" / "log" / "rank_0" / "info.log").read_text()
    assert len(STEP_LINE.findall(log)) == len(steps)  # the file the orchestrator follows


def test_checkpoints_are_written_per_rank_with_the_yaml_prefix(pretrain_run):
    ckpts = pretrain_run.checkpoints()
    assert ckpts and all(p.parent.name == "rank_0" for p in ckpts)
    last = ckpts[-1]
    assert last.name.startswith("iFlytekSpark_tiny_rank_0-1_")
    weights = load(last)
    steps = len(pretrain_run.steps())
    assert int(weights["global_step"].reshape(-1)[0]) == steps
    assert "adam_m.transformer.embedding.word_embeddings.embedding_table" in weights


def test_resume_at_the_final_step_has_nothing_left_to_train(runs):
    done = runs["resume_done"]  # exit 0 is checked by the fixture
    assert "training is already complete, nothing left to train" in done.output
    assert done.steps() == []


def test_resume_continues_the_step_count_and_the_loss(pretrain_run, runs):
    resumed_run = runs["resume"]
    first = resumed_run.steps()
    per_epoch = len(pretrain_run.steps())
    assert first[0][:2] == (2, 1), "resume must start in epoch 2 at its first step"
    assert len(first) == per_epoch
    assert first[0][2] < pretrain_run.steps()[0][2] - 0.5  # starts from the trained weights
    final = load(resumed_run.checkpoints()[-1])
    assert int(final["global_step"].reshape(-1)[0]) == 2 * per_epoch


def test_sft_trains_on_input_ids_and_loss_mask(runs):
    sft_run = runs["sft"]
    assert "construct_args_key: ['input_ids', 'loss_mask']" in sft_run.output
    losses = [loss for _, _, loss in sft_run.steps()]
    assert losses and mean(losses[-5:]) < mean(losses[:5])
    assert sft_run.checkpoints()


def test_lora_changes_only_lora_parameters(pretrain_run, runs):
    lora_run = runs["lora"]
    base = load(pretrain_run.checkpoints()[-1])
    tuned = load(lora_run.checkpoints()[-1])
    lora = [k for k in tuned if "mindpet_delta_lora" in k and not k.startswith(("adam_m.", "adam_v."))]
    assert len(lora) == 2 * 7 * 2  # a and b of 7 linears in each of 2 layers
    assert any(np.abs(tuned[k]).max() > 0 for k in lora if k.endswith("lora_b"))  # B starts at zero
    weights = [k for k in base if k.startswith("transformer.")]
    assert weights and all(np.array_equal(base[k], tuned[k]) for k in weights)
    assert not any(k.startswith("adam_m.transformer") and "lora" not in k for k in tuned)


def test_eval_reports_loss_and_perplexity(pretrain_run, runs):
    result = runs["eval"]
    found = json.loads((result.cwd / "output" / "eval_result.json").read_text())
    assert f"eval: loss {found['loss']:.6f}" in result.output
    assert found["perplexity"] == pytest.approx(math.exp(found["loss"]))
    assert found["loss"] < pretrain_run.steps()[0][2] - 0.5
    assert found["rows"] // 2 == len(pretrain_run.steps())  # training drops the odd last row, eval does not
