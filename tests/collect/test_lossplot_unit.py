"""Fast tests of the loss curve: parsing MindFormers loss lines (sink and no-sink) and the PNG."""

from __future__ import annotations

import struct

from orchestrator.collect.lossplot import _rank_order, loss_points, plot_losses, read_loss

SINK = ("2026-01-01 10:00:0{s},000 - mindformers[mindformers/core/callback/callback.py:335] - INFO - "
        "{{ Epoch:[  {e}/  2], step:[{s:5d}/    3], loss: {loss:5.6f}, per_step_time: 120ms, lr: 1e-05, "
        "overflow cond: False, loss_scale: 1.0, global_norm: [1.2]")  # fmt: skip
NO_SINK = "- INFO - { Epoch:[  1/  1], step:[    4/    9], loss:[ 2.500000/ 2.600000], per_step_time: 99ms, lr: 1e-05"


def test_loss_points_from_sink_and_no_sink_lines(tmp_path):
    lines = [SINK.format(e=e, s=s, loss=10.0 - e * 3 - s) for e in (1, 2) for s in (1, 2, 3)]
    lines += ["noise step:[ not a loss line", "  50.0% |#####| 4.00000 samples/s/p  0:00:03 }"]
    pts = loss_points(lines)
    assert pts == [(1, 6.0), (2, 5.0), (3, 4.0), (4, 3.0), (5, 2.0), (6, 1.0)]  # global step over epochs
    assert loss_points([NO_SINK]) == [(4, 2.5)]
    assert loss_points([SINK.format(e=1, s=1, loss=9.0), SINK.format(e=1, s=1, loss=8.0)]) == [(1, 8.0)]
    log = tmp_path / "stdout.log"
    log.write_text("\n".join(lines) + "\n")
    assert read_loss(log) == pts and read_loss(tmp_path / "missing.log") == []


def test_plot_is_a_valid_png_and_empty_series_gives_none(tmp_path):
    series = {"rank-0 (a)": [(s, 8.0 / s) for s in range(1, 30)], "rank-1 (b)": [(s, 8.0 / s + 0.1) for s in range(1, 12)],
              "rank-2 (c)": [(1, float("nan"))]}  # fmt: skip
    out = plot_losses(series, tmp_path / "loss.png", "job x (pretrain, failed)", failed_at=("rank-1", 11))
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (800, 450)
    assert plot_losses({"rank-0": [], "rank-1": [(1, float("inf"))]}, tmp_path / "none.png", "t") is None
    assert not (tmp_path / "none.png").exists()


def test_legend_orders_ranks_by_number():
    labels = ["rank-10 (10.0.0.2)", "rank-9 (10.0.0.1)", "other", "rank-0 (10.0.0.1)"]
    assert sorted(labels, key=_rank_order) == [
        "rank-0 (10.0.0.1)",
        "rank-9 (10.0.0.1)",
        "rank-10 (10.0.0.2)",
        "other",
    ]
