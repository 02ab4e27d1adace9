"""The node agent's pure parts: MindFormers progress lines and npu-smi process tables."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from orchestrator.agent.node_agent import parse_npu_smi, parse_progress
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


def test_npu_smi_process_rows():
    rows = parse_npu_smi(_fixture("npu-smi_info_910PremiumA_23.0.rc2_8npu_procs.txt"))
    assert [(r["npu"], r["pid"], r["name"]) for r in rows][:2] == [(0, 5139, "python"), (1, 5141, "python")]
    assert len(rows) == 8
    many = parse_npu_smi(_fixture("npu-smi_info_910B2_25.2.0_8npu_procs.txt"))
    assert sum(r["npu"] == 0 for r in many) == 8 and {r["npu"] for r in many} == set(range(8))
    (blank,) = parse_npu_smi(_fixture("npu-smi_info_910B3_25.2.0_8npu_idle_plus_one_unnamed.txt"))
    assert (blank["npu"], blank["pid"], blank["name"], blank["memory"]) == (2, 1333928, "", "37709")
    assert parse_npu_smi(_fixture("npu-smi_info_910A_23.0.rc1.b070_4npu_warning_testfixture.txt")) == []
    assert parse_npu_smi(_fixture("npu-smi_info_910A_21.0.4_hugepages_2npu.txt")) == []


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
