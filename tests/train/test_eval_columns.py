"""run_mode eval passes each dataset column to the network by name (as MindFormers' Trainer does), so SFT's
loss_mask is the loss mask, not the labels: the eval loss is the training loss."""

from __future__ import annotations

import json

import numpy as np
import pytest
from iflytekspark.tasks.evaluate import construct_keys
from iflytekspark.tasks.setup import RunConfigError

from tests.fixtures.model import TINY, random_weights
from tests.fixtures.train import TINY_SIZES, run_entry, tiny_run_yaml

SIZES = {k: v for k, v in TINY_SIZES.items() if k != "batch_size"}
CONFIG = {**SIZES, "layernorm_epsilon": TINY["layernorm_epsilon"], "rope_theta": TINY["rope_theta"]}


def construct(input_ids, labels=None, loss_mask=None):
    """The inputs of IFlytekSparkForCausalLM.construct."""


def test_columns_go_to_the_keyword_of_their_name_or_of_construct_args_key():
    cfg: dict = {}
    assert construct_keys(cfg, ["input_ids", "loss_mask"], construct) == ["input_ids", "loss_mask"]
    assert construct_keys(cfg, ["input_ids", "labels"], construct) == ["input_ids", "labels"]
    renamed = {"construct_args_key": ["input_ids", "loss_mask"]}
    assert construct_keys(renamed, ["ids", "mask"], construct) == ["input_ids", "loss_mask"]
    with pytest.raises(RunConfigError, match=r"\['attention_mask'\] are not inputs of the network"):
        construct_keys(cfg, ["input_ids", "attention_mask"], construct)
    with pytest.raises(RunConfigError, match="input_ids is missing"):
        construct_keys(cfg, ["tokens"], lambda **kwargs: None)
    with pytest.raises(RunConfigError, match="names 1 input"):
        construct_keys({"construct_args_key": ["input_ids"]}, ["a", "b"], construct)


@pytest.mark.mindspore
def test_sft_eval_loss_is_the_training_loss_with_loss_mask(tmp_path, tiny_model, sft_mindrecord):
    import mindspore as ms
    import mindspore.dataset as ds

    weights = random_weights({**TINY, **CONFIG}, seed=3)
    ckpt = tmp_path / "random.ckpt"
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in weights.items()], str(ckpt))
    cfg = tiny_run_yaml(sft_mindrecord, columns=("input_ids", "loss_mask"))
    cfg["model"]["model_config"].update(CONFIG)
    args = ("--run_mode", "eval", "--eval_dataset", str(sft_mindrecord), "--load_checkpoint", str(ckpt))
    result = run_entry(tmp_path / "eval", cfg, *args)
    assert result.proc.returncode == 0, result.output[-3000:]
    found = json.loads((tmp_path / "eval" / "output" / "eval_result.json").read_text())

    data = ds.MindDataset(str(sft_mindrecord), columns_list=["input_ids", "loss_mask"], shuffle=False)
    rows = list(data.create_tuple_iterator(output_numpy=True))
    ids = ms.Tensor(np.stack([r[0] for r in rows]).astype(np.int32))
    mask = ms.Tensor(np.stack([r[1] for r in rows]).astype(np.int32))
    model = tiny_model(3, **CONFIG)
    model.set_train(True)
    training = float(model(input_ids=ids, loss_mask=mask).asnumpy())  # what SFT training minimises
    positional = float(model(ids, mask).asnumpy())  # the mask taken as labels
    assert found["rows"] == len(rows) and found["tokens"] == int(mask.asnumpy()[:, 1:].sum())
    assert found["loss"] == pytest.approx(training, rel=1e-4)
    assert found["loss"] != pytest.approx(positional, rel=1e-2)
