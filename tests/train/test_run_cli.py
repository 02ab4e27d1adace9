"""The entry point's pure parts: flags, YAML overrides, launch environment, eval helpers, convert rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
from iflytekspark.convert import classify, plan
from iflytekspark.parallel_env import ParallelEnvError, detect
from iflytekspark.run import RunOptions, parse_args
from iflytekspark.tasks import TASK_MODULES
from iflytekspark.tasks.evaluate import checkpoint_file, loss_tokens
from iflytekspark.tasks.overrides import apply_overrides


def test_flags_left_out_are_none_and_booleans_take_true_false():
    opts = parse_args(["--config", "c.yaml"])
    assert opts == RunOptions(config="c.yaml")
    opts = parse_args(
        ["--config", "c.yaml", "--use_parallel", "True", "--auto_trans_ckpt", "false", "--resume", "1"]
    )
    assert (opts.use_parallel, opts.auto_trans_ckpt, opts.resume) == (True, False, True)
    with pytest.raises(SystemExit):
        parse_args(["--config", "c.yaml", "--use_parallel", "maybe"])
    with pytest.raises(SystemExit):
        parse_args(["--config", "c.yaml", "--run_mode", "serve"])


def test_only_given_flags_override_the_yaml():
    cfg = {
        "use_parallel": True,
        "auto_trans_ckpt": True,
        "run_mode": "finetune",
        "train_dataset": {"data_loader": {"dataset_dir": "old"}},
        "train_dataset_task": {"dataset_config": {"data_loader": {"dataset_dir": "old"}}},
    }
    changes = apply_overrides(cfg, RunOptions(config="c.yaml"))
    assert (cfg["use_parallel"], cfg["auto_trans_ckpt"], cfg["run_mode"]) == (True, True, "finetune")
    assert changes == ["run_mode = 'finetune'"]
    opts = RunOptions(
        config="c.yaml",
        run_mode="train",
        use_parallel=False,
        train_dataset="new.mindrecord",
        resume=True,
        load_checkpoint="ck",
        optimizer_parallel=True,
        device_id=3,
    )
    apply_overrides(cfg, opts)
    assert (cfg["use_parallel"], cfg["auto_trans_ckpt"], cfg["run_mode"]) == (False, True, "train")
    assert cfg["train_dataset"]["data_loader"]["dataset_dir"] == "new.mindrecord"
    assert cfg["train_dataset_task"]["dataset_config"]["data_loader"]["dataset_dir"] == "new.mindrecord"
    assert (cfg["resume_training"], cfg["load_checkpoint"]) == (True, "ck")
    assert cfg["parallel"]["enable_parallel_optimizer"] is True and cfg["context"]["device_id"] == 3
    assert apply_overrides({}, RunOptions(config="c.yaml")) == ["run_mode = 'train'"]


def test_every_run_mode_has_a_module():
    assert set(TASK_MODULES) == {"train", "finetune", "eval", "predict", "export"}
    assert TASK_MODULES["train"] == TASK_MODULES["finetune"] == "train"


DYNAMIC = {
    "MS_ROLE": "MS_WORKER",
    "MS_SCHED_HOST": "10.0.0.1",
    "MS_SCHED_PORT": "8118",
    "MS_WORKER_NUM": "2",
    "MS_NODE_ID": "1",
}


def test_dynamic_cluster_environment():
    env = detect(DYNAMIC, "CPU")
    assert (env.style, env.rank, env.world_size, env.is_scheduler) == ("dynamic_cluster", 1, 2, False)
    sched = detect({**DYNAMIC, "MS_ROLE": "MS_SCHED", "MS_NODE_ID": ""}, "CPU")
    assert sched.is_scheduler and sched.rank is None


def test_inconsistent_dynamic_cluster_lists_every_problem():
    bad = {"MS_ROLE": "MS_WORKER", "MS_SCHED_PORT": "99999", "MS_WORKER_NUM": "2", "MS_NODE_ID": "2"}
    with pytest.raises(ParallelEnvError) as err:
        detect(bad, "CPU")
    text = str(err.value)
    assert "MS_SCHED_HOST is not set" in text and "MS_SCHED_PORT=99999 is not a TCP port" in text
    assert "MS_NODE_ID=2 must be below MS_WORKER_NUM=2" in text
    with pytest.raises(ParallelEnvError, match="MS_ROLE='boss'"):
        detect({**DYNAMIC, "MS_ROLE": "boss"}, "CPU")


def test_no_launcher_environment_names_both_styles():
    with pytest.raises(ParallelEnvError) as err:
        detect({}, "CPU")
    assert "MS_SCHED_HOST" in str(err.value) and "RANK_TABLE_FILE" in str(err.value)


def write_table(path, devices):
    table = {
        "version": "1.0",
        "server_count": "1",
        "status": "completed",
        "server_list": [
            {
                "server_id": "10.0.0.1",
                "device": [
                    {"device_id": str(d), "device_ip": f"192.168.1.{d}", "rank_id": str(r)}
                    for r, d in devices
                ],
            }
        ],
    }
    path.write_text(json.dumps(table))
    return str(path)


def test_rank_table_environment_is_checked_against_the_table(tmp_path):
    table = write_table(tmp_path / "rt.json", [(0, 0), (1, 1), (2, 2), (3, 3)])
    env = {"RANK_TABLE_FILE": table, "RANK_ID": "2", "DEVICE_ID": "2", "RANK_SIZE": "4"}
    assert detect(env, "Ascend").rank == 2
    with pytest.raises(ParallelEnvError) as err:
        detect({**env, "DEVICE_ID": "5", "RANK_SIZE": "8"}, "Ascend")
    assert "RANK_SIZE=8 but" in str(err.value) and "DEVICE_ID=5" in str(err.value)
    with pytest.raises(ParallelEnvError, match="RANK_ID is not set"):
        detect({"RANK_TABLE_FILE": table, "DEVICE_ID": "0", "RANK_SIZE": "4"}, "Ascend")
    with pytest.raises(ParallelEnvError, match="needs Ascend"):
        detect(env, "CPU")
    with pytest.raises(ParallelEnvError, match="cannot read it as JSON"):
        detect({**env, "RANK_TABLE_FILE": str(tmp_path / "none.json")}, "Ascend")


def test_eval_counts_the_tokens_the_loss_averages_over():
    ids = np.array([[7, 8, 9, 0, 0]])
    assert loss_tokens({"input_ids": ids}, pad_id=0, reference_alignment=False) == 2
    assert loss_tokens({"input_ids": ids}, pad_id=0, reference_alignment=True) == 3
    mask = np.array([[0, 0, 1, 1, 0]])
    assert loss_tokens({"input_ids": ids, "loss_mask": mask}, 0, False) == 2
    assert loss_tokens({"input_ids": ids, "loss_mask": np.array([[1, 0, 0, 0, 1]])}, 0, True) == 1


def test_eval_checkpoint_is_the_newest_of_rank_0(tmp_path):
    import os

    (tmp_path / "rank_0").mkdir()
    old, new = tmp_path / "rank_0" / "a-1_5.ckpt", tmp_path / "rank_0" / "a-1_10.ckpt"
    old.write_text("x")
    new.write_text("x")
    os.utime(old, (1, 1))
    assert checkpoint_file(str(tmp_path)) == str(new)
    assert checkpoint_file(str(old)) == str(old)


def test_convert_rules():
    names = [
        "transformer.embedding.word_embeddings.embedding_table",
        "transformer.transformer.layernorm.gamma",
        "transformer.transformer.layers.0.attention.q_proj.weight",
        "transformer.transformer.layers.0.attention.slice_sparse_mask",
        "adam_m.transformer.transformer.layers.0.attention.q_proj.weight",
        "global_step",
    ]
    assert [classify(n) for n in names] == ["weight", "weight", "weight", "mask", "optimizer", "optimizer"]
    assert list(plan(names, "bfloat16", False, False, False).values()) == [
        "float32",
        "float32",
        "bfloat16",
        None,
        None,
        None,
    ]
    assert list(plan(names, "float16", True, True, True).values()) == [
        "float16",
        "float16",
        "float16",
        None,
        "keep",
        "keep",
    ]


def test_a_renumbered_device_id_is_checked_by_its_physical_id(tmp_path):
    """Under ASCEND_RT_VISIBLE_DEVICES the process sees NPU 6 as device 0; the table keeps 6."""
    table = write_table(tmp_path / "rt.json", [(0, 6), (1, 7)])
    seen = {"RANK_TABLE_FILE": table, "RANK_ID": "0", "DEVICE_ID": "0", "RANK_SIZE": "2",
            "ASCEND_RT_VISIBLE_DEVICES": "6,7"}  # fmt: skip
    assert detect({**seen, "ORCHESTRATE_PHYSICAL_DEVICE_ID": "6"}, "Ascend").rank == 0  # the agent's mapping
    assert detect(seen, "Ascend").rank == 0  # renumbered, no mapping given: not comparable, not refused
    with pytest.raises(ParallelEnvError, match="DEVICE_ID=7 but"):
        detect({**seen, "ORCHESTRATE_PHYSICAL_DEVICE_ID": "7"}, "Ascend")
