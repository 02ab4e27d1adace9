"""The stand-in's parts on the host (fast, no cluster): MindFormers' own device decision, checkpoints the
orchestrator's resume reader understands, logical-to-physical NPU ids, and the node Python's pins."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.launch.resume_point import _SCRIPT as LIST_CHECKPOINTS
from orchestrator.sim import node_files, node_python

STANDIN = Path(node_files.__file__).with_name("standin")
ASCEND = {"device_target": "Ascend", "mode": 0}


@pytest.fixture
def standin(monkeypatch):
    monkeypatch.syspath_prepend(str(STANDIN))
    for env in ("DEVICE_ID", "MS_ROLE", "ASCEND_RT_VISIBLE_DEVICES"):
        monkeypatch.delenv(env, raising=False)
    return lambda name: importlib.import_module(name)


def test_mindformers_decides_the_device_from_the_yaml_before_device_id(standin, monkeypatch):
    mf = standin("osim_mf")
    monkeypatch.setenv("DEVICE_ID", "5")
    assert mf.bound_device({"use_parallel": True, "context": dict(ASCEND)}) == 5
    assert mf.bound_device({"use_parallel": True, "context": dict(ASCEND, device_id=0)}) == 0  # issue 11 #1
    assert (
        mf.ms_context({"use_parallel": True, "context": dict(ASCEND, max_device_memory="58GB")})[
            "max_device_memory"
        ]
        == "58GB"
    )
    monkeypatch.setenv("MS_ROLE", "MS_WORKER")  # a dynamic cluster: MindFormers passes no device at all
    assert mf.bound_device({"use_parallel": True, "context": dict(ASCEND, device_id=0)}) is None


def test_the_decision_is_read_from_the_installed_mindformers(standin):
    mf = standin("osim_mf")
    build = Path(mf.mindformers_dir(), "core", "context", "build_context.py")
    assert "def _handle_data" in build.read_text()  # the file whose code decides, read, not imported
    with pytest.raises(RuntimeError, match="no longer defines"):
        mf._pick(str(build), ["NoSuchClass"])


def test_checkpoints_carry_the_global_step_the_resume_reader_finds(standin, tmp_path):
    ckpt = standin("osim_ckpt")
    folder = tmp_path / "checkpoint" / "rank_3"
    ckpt.write(str(folder / "iFlytekSpark_tiny_rank_3_1-1_2.ckpt"), step=52, epoch=1, rank=3)
    assert ckpt.read_step(str(folder / "iFlytekSpark_tiny_rank_3_1-1_2.ckpt")) == 52
    listed = subprocess.run([sys.executable, "-c", LIST_CHECKPOINTS, str(tmp_path), "list", "3"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert [(r[0], r[1], r[3]) for r in json.loads(listed.stdout)] == [
        (3, "iFlytekSpark_tiny_rank_3_1-1_2.ckpt", 52)
    ]
    assert ckpt.resume_step(str(tmp_path / "checkpoint"), 3)[1] == 52
    assert ckpt.resume_step(str(tmp_path / "checkpoint"), 4) == (None, 0)


def test_visible_devices_renumber_the_npus(standin):
    checks = standin("osim_checks")
    assert checks.physical_device(3, {}, list(range(8))) == 3
    assert checks.physical_device(0, {"ASCEND_RT_VISIBLE_DEVICES": "6,7"}, list(range(8))) == 6
    for logical, env in (
        (2, {"ASCEND_RT_VISIBLE_DEVICES": "6,7"}),
        (8, {}),
        (0, {"ASCEND_RT_VISIBLE_DEVICES": "9"}),
    ):
        with pytest.raises(checks.RankFailure, match="aclrtSetDevice"):
            checks.physical_device(logical, env, list(range(8)))


def test_the_hook_only_takes_python_m_iflytekspark_run(standin, monkeypatch):
    monkeypatch.setattr(sys, "orig_argv", ["python", "-c", "pass"], raising=False)
    hook = standin("osim_node_hook")
    for argv, want in [
        (["py", "-m", "iflytekspark.run", "--config", "x.yaml"], ["--config", "x.yaml"]),
        (["py", "-u", "-m", "iflytekspark.run"], []),
        (["py", "-m", "iflytekspark.convert", "--config", "x"], None),
        (["py", "script.py", "-m", "iflytekspark.run"], None),
    ]:
        monkeypatch.setattr(sys, "orig_argv", argv, raising=False)
        assert hook._run_args() == want, argv


def test_node_python_pins_come_from_pyproject_and_key_the_cache():
    pins = node_python.pins()
    assert {p.split("==")[0] for p in pins} >= {"mindspore", "mindformers", "sentencepiece", "pyyaml"}
    assert all("==" in p for p in pins) and not any(p.startswith(("paramiko", "click", "rich")) for p in pins)
    key = node_python.key_of(pins, "3.11")
    assert pins == tuple(sorted(pins)) and key == node_python.key_of(pins, "3.11")
    assert key != node_python.key_of(pins, "3.10") and key != node_python.key_of(pins[1:], "3.11")


def test_the_controllers_paths_are_hidden_but_never_system_folders():
    hidden = node_files.hidden_paths()
    repo = str(Path(node_files.__file__).resolve().parents[2])
    assert repo in hidden and not set(hidden) & set(node_files.PROTECTED)
    assert all(not p.startswith(("/root/", "/home/")) and p not in ("/root", "/home") for p in hidden)
