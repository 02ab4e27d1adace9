"""The node agent's pure parts: MindFormers progress lines, and npu-smi holders by physical device."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from orchestrator.agent.node import devices as node_devices
from orchestrator.agent.node.progress import parse_progress
from orchestrator.ascend import parse_npu_smi_info
from tests.agent.dummy_rank import mf_loss_lines
from tests.fixtures.captures import CAPTURES

CALLBACK = (
    Path(__file__).resolve().parents[2]
    / ".venv/lib/python3.11/site-packages/mindformers/core/callback/callback.py"
)
ASCEND = CAPTURES


@pytest.mark.skipif(not CALLBACK.exists(), reason="mindformers not installed in .venv")
def test_line_builder_uses_the_installed_mindformers_formats():
    source = CALLBACK.read_text()
    for fmt in (
        '"{ Epoch:[%3d/%3d], step:[%5d/%5d], " + loss_info',
        '"loss: %5.6f, " % loss',
        '"loss:[%5.6f/%5.6f], " % (loss, np.mean(self.loss_list))',
        '"per_step_time: %dms, lr: %s, overflow cond: %s, loss_scale: %s, global_norm: %s%s"',
        '"per_step_time: %dms, overflow cond: %s, loss_scale: %s, global_norm: %s%s"',
        "', train_throughput_per_npu: %.3fT' % (throughput_per_npu)",
        '"  %4.1f%% %s %.5f samples/s/p  %s }"',
    ):
        assert fmt in source, fmt


def test_sink_mode_line_with_lr_and_flops():
    text = "\n".join(
        mf_loss_lines(1, 2, 4, 10, 9.5, 123.9, throughput_t=1.2, throughput=3.25, time_remain=2)
        + mf_loss_lines(2, 2, 5, 10, 7.25, 321.0, throughput_t=1.5, throughput=2.5, time_remain=90061)
    )
    p = parse_progress(text, seq_length=1024)
    assert (p["epoch"], p["epochs"], p["step"], p["steps_per_epoch"]) == (2, 2, 5, 10)
    assert (p["global_step"], p["total_steps"]) == (15, 20)
    assert p["loss"] == 7.25 and p["per_step_ms"] == 321 and p["lr"] == "1e-05"
    assert p["tflops_per_npu"] == 1.5 and p["global_norm"] == "[1.2345]" and p["overflow"] == "False"
    assert p["percent"] == 75.0 and p["samples_per_s"] == 2.5 and p["tokens_per_s"] == 2560.0
    assert p["eta_s"] == 90061  # "1 day, 1:01:01"


def test_no_sink_line_without_lr_or_bar():
    (step_line, _bar) = mf_loss_lines(1, 1, 3, 8, 4.5, 50, lr=None, sink=False, mean_loss=5.0)
    p = parse_progress("noise\n" + step_line + "\nmore noise\n")
    assert p["loss"] == 4.5 and p["lr"] is None and p["per_step_ms"] == 50
    assert p["samples_per_s"] is None and p["tokens_per_s"] is None
    assert p["eta_s"] == 0  # (8 - 3) steps * 50 ms rounded down


def test_nan_loss_and_no_progress():
    p = parse_progress("\n".join(mf_loss_lines(1, 1, 1, 2, float("nan"), 10)))
    assert math.isnan(p["loss"])
    assert parse_progress("Traceback (most recent call last):\nRuntimeError: boom\n") is None


def _fixture(name: str) -> str:
    path = ASCEND / name
    if not path.exists():
        pytest.skip(f"{path} missing")
    return path.read_text()


def test_npu_smi_holders_by_physical_device():
    """The agent reads npu-smi with the controller's parser; rows are matched by physical device id."""
    info = parse_npu_smi_info(_fixture("npu-smi_info_910PremiumA_23.0.rc2_8npu_procs.txt"))
    rows = node_devices.holders(info, [0, 1])
    assert [(r["device"], r["pid"], r["name"]) for r in rows] == [(0, 5139, "python"), (1, 5141, "python")]
    assert {r["state"] for r in rows} == {"exited"}  # no such processes here: gone (or host pids)
    many = parse_npu_smi_info(_fixture("npu-smi_info_910B2_25.2.0_8npu_procs.txt"))
    assert sum(r["device"] == 0 for r in node_devices.holders(many)) == 8
    blank = parse_npu_smi_info(_fixture("npu-smi_info_910B3_25.2.0_8npu_idle_plus_one_unnamed.txt"))
    (row,) = node_devices.holders(blank, [2])
    assert (row["npu"], row["pid"], row["name"], row["memory_mb"]) == (2, 1333928, "", 37709)
    assert node_devices.holders(blank, [0, 1, 3]) == []
    a3 = parse_npu_smi_info(
        (Path(__file__).parents[1] / "ascend" / "data" / "npu-smi_info_A3_24.1.0_2npu_2chip.txt").read_text()
    )
    # Atlas A3: chip 1 of NPU 1 is physical device 3 (its Phy-ID), not device 1
    assert [(r["npu"], r["chip"], r["device"]) for r in node_devices.holders(a3, [3])] == [(1, 1, 3)]
    assert [r["device"] for r in node_devices.holders(a3, [0, 1])] == [0, 1]


def test_device_ids_under_visible_devices_and_containers():
    """DEVICE_ID: the logic id, or its index in ASCEND_RT_VISIBLE_DEVICES (CANN; MindSpore maps back)."""
    assert node_devices.device_ids([4, 5], None, None) == {
        4: {"logical": 4, "device_id": 4},
        5: {"logical": 5, "device_id": 5},
    }
    assert node_devices.device_ids([4, 5], None, "4,5")[5] == {"logical": 5, "device_id": 1}
    container = {4: 0, 5: 1}  # npu-smi info -m in a container holding physical NPUs 4 and 5
    assert node_devices.device_ids([5], container, None)[5] == {"logical": 1, "device_id": 1}
    assert node_devices.device_ids([5], container, "1")[5] == {"logical": 1, "device_id": 0}
    with pytest.raises(ValueError, match="NPU 3 of the plan is not on this node: npu-smi info -m lists 4, 5"):
        node_devices.device_ids([3], container, None)
    with pytest.raises(
        ValueError, match="NPU 4 .logic id 0. is not visible to the ranks: ASCEND_RT_VISIBLE_DEVICES=1"
    ):
        node_devices.device_ids([4], container, "1")
    with pytest.raises(ValueError, match="ascending order"):
        node_devices.device_ids([4], None, "5,4")
    assert node_devices.visible_list("1, 2,3") == [1]  # CANN stops at the first invalid character


def test_real_mindformers_lines_from_stdout_and_info_log():
    """Lines a real MindFormers 1.7.0 CPU pretrain printed here (stdout handler, then info.log)."""
    lines = (
        (Path(__file__).with_name("data") / "mindformers_1.7.0_cpu_loss_lines.log").read_text().splitlines()
    )
    for log in (lines[:4], lines[4:]):
        p = parse_progress("\n".join(log), seq_length=1024)
        assert (p["step"], p["total_steps"], p["loss"], p["per_step_ms"]) == (56, 56, 6.924858, 231)
        assert (p["samples_per_s"], p["tokens_per_s"], p["percent"], p["eta_s"]) == (
            4.31953,
            4423.199,
            100.0,
            0,
        )
        assert p["lr"] == "1.6176471e-05" and p["tflops_per_npu"] == 0.0
        cut = log[2][: log[2].index("step:[") + 9]  # a step line still being written
        partial = parse_progress("\n".join(log[:3] + [cut]))
        assert partial["step"] == 56 and partial["samples_per_s"] is None


def test_tools_are_looked_for_on_path_then_where_ascend_installs_them(tmp_path, monkeypatch):
    root = tmp_path / "Ascend"
    for tool in (root / "driver" / "tools" / "hccn_tool", tmp_path / "bin" / "hccn_tool"):
        tool.parent.mkdir(parents=True)
        tool.write_text("#!/bin/sh\n")
        tool.chmod(0o755)
    assert node_devices.tool_places("hccn_tool", str(root)) == [
        str(root / "driver" / "tools" / "hccn_tool"),
        "/usr/local/Ascend/driver/tools/hccn_tool",
    ]
    assert node_devices.tool_places("npu-smi") == ["/usr/local/sbin/npu-smi", "/usr/local/bin/npu-smi"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert node_devices.find_tool("hccn_tool", str(root)) == str(root / "driver" / "tools" / "hccn_tool")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert node_devices.find_tool("hccn_tool", str(root)) == str(tmp_path / "bin" / "hccn_tool")
