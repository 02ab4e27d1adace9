"""The plan reads the tokenizer (a folder or its .model file) and refuses one the model cannot take, or
a missing one, before any node is touched; the eval dataset's columns come from its MindRecord header."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess

import pytest
import yaml

from orchestrator.errors import InputError
from orchestrator.plan.inputs import mindrecord_columns
from orchestrator.plan.planner import make_plan
from tests.launch.conftest import ORCHESTRATE
from tests.plan.helpers import CPU, make_inventory


def cpu():
    return make_inventory(CPU, devices=2, ips=False, model="tiny")


def _argv_value(plan, flag: str) -> str:
    argv = plan.nodes[0].launches[1].argv
    return argv[argv.index(flag) + 1]


def test_a_tokenizer_larger_than_the_model_vocabulary_is_refused(tiny_tokenizer):
    with pytest.raises(InputError) as err:
        make_plan(cpu(), "predict", [f"job.tokenizer={tiny_tokenizer}", "model.vocab_size=300"])
    (p,) = err.value.problems
    assert (p.file, p.field) == (str(tiny_tokenizer / "tokenizer.model"), "job.tokenizer")
    assert "more than the vocab_size 300 of model tiny" in p.message and "vocab_size >=" in p.fix


@pytest.mark.parametrize("task", ["predict", "finetune"])
def test_a_missing_tokenizer_is_refused_with_the_fix(tmp_path, task):
    with pytest.raises(InputError) as err:
        make_plan(cpu(), task, [f"job.tokenizer={tmp_path / 'nope'}", "job.train_dataset=/d/t.mindrecord"])
    (p,) = err.value.problems
    assert (p.file, p.field, p.message) == (str(tmp_path / "nope"), "job.tokenizer", "no such file or folder")
    assert ".model file" in p.fix


def test_the_cli_refuses_with_exit_code_2_naming_the_file(tmp_path, tiny_tokenizer):
    res = subprocess.run([ORCHESTRATE, "plan", "--task", "predict", "--out", str(tmp_path / "p"),
                          "--set", f"job.tokenizer={tiny_tokenizer}", "--set", "model.vocab_size=256"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"{tiny_tokenizer / 'tokenizer.model'}: job.tokenizer: " in res.stderr
    assert not (tmp_path / "p").exists()


def test_a_tokenizer_given_as_its_model_file_travels_with_its_vocab(tiny_tokenizer):
    model = tiny_tokenizer / "tokenizer.model"
    plan = make_plan(cpu(), "predict", [f"job.tokenizer={model}", "model.vocab_size=1024"])
    job = plan.nodes[0].job_dir
    assert _argv_value(plan, "--tokenizer_file") == f"{job}/inputs/tokenizer/tokenizer.model"
    moved = sorted((t.source, t.dest) for t in plan.transfers if "/inputs/tokenizer" in t.dest)
    assert moved == [(str(model), f"{job}/inputs/tokenizer/tokenizer.model"),
                     (str(tiny_tokenizer / "tokenizer.vocab"), f"{job}/inputs/tokenizer/tokenizer.vocab")]  # fmt: skip
    folder = make_plan(cpu(), "predict", [f"job.tokenizer={tiny_tokenizer}", "model.vocab_size=1024"])
    assert _argv_value(folder, "--tokenizer_file") == f"{job}/inputs/tokenizer/{tiny_tokenizer.name}"


def test_a_folder_without_its_vocab_file_is_refused_and_its_model_file_accepted(tmp_path, tiny_tokenizer):
    shutil.copy(tiny_tokenizer / "tokenizer.model", tmp_path / "tokenizer.model")
    with pytest.raises(InputError, match=r"no \*\.vocab file"):
        make_plan(cpu(), "predict", [f"job.tokenizer={tmp_path}", "model.vocab_size=1024"])
    plan = make_plan(
        cpu(), "predict", [f"job.tokenizer={tmp_path / 'tokenizer.model'}", "model.vocab_size=1024"]
    )
    assert [t.dest.rsplit("/", 1)[1] for t in plan.transfers if "/inputs/tokenizer" in t.dest] == [
        "tokenizer.model"
    ]


def test_eval_reads_its_columns_from_the_mindrecord_header(tmp_path):
    def mindrecord(name: str, columns: list[str]):
        header = json.dumps({"schema": [{"schema": {c: {"type": "int64", "shape": [-1]} for c in columns}}]})
        path = tmp_path / name
        path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + b"\0" * 64)
        return path

    sft, pre = (
        mindrecord("sft.mindrecord", ["loss_mask", "input_ids"]),
        mindrecord("p.mindrecord", ["input_ids"]),
    )
    assert mindrecord_columns(str(sft)) == ("input_ids", "loss_mask") and mindrecord_columns("/nope") is None
    for data, columns in ((sft, ["input_ids", "loss_mask"]), (pre, ["input_ids"])):
        plan = make_plan(cpu(), "eval", [f"job.eval_dataset={data}", "job.load_checkpoint=/c.ckpt"])
        assert yaml.safe_load(plan.nodes[0].yaml_text)["eval_dataset"]["input_columns"] == columns
