"""`orchestrate demo summary`: loss first -> last per rank read from the nodes' logs, checkpoints, JSON."""

from __future__ import annotations

import json

import pytest

from orchestrator.cli.main import main
from orchestrator.jobs.model import JobState, JobStatus
from orchestrator.jobs.state import JobDir
from orchestrator.launch.report import JobReport, RankLoss, render_report
from tests.collect.conftest import JOB


@pytest.fixture
def job(node, tmp_path, monkeypatch) -> JobDir:
    record, _, _, _, plan = node
    monkeypatch.setenv("ORCHESTRATE_HOME", str(tmp_path / "orch"))
    jd = JobDir(JOB).create()
    jd.save_record(record)
    jd.save_plan(plan)
    jd.save_status(JobStatus(JOB, "pretrain", JobState.FAILED, record.created + 150, record.created))
    return jd


def test_summary_reads_every_rank_log_on_the_node(job, node, capsys):
    assert main(["demo", "summary", JOB, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    # rank 0 logged steps 1..7 (loss 5/s), rank 1 steps 1..3 before it failed (the fixture's logs)
    ranks = {r["name"]: r for r in got["ranks"]}
    assert set(ranks) == {"rank-0", "rank-1"}
    assert (ranks["rank-0"]["first_step"], ranks["rank-0"]["last_step"]) == (1, 7)
    assert ranks["rank-0"]["last_loss"] == pytest.approx(5.0 / 7)
    assert (ranks["rank-1"]["first_step"], ranks["rank-1"]["last_step"]) == (1, 3)
    assert got["first_loss"] == pytest.approx(5.0)
    assert got["last_loss"] == pytest.approx((5.0 / 7 + 5.0 / 3) / 2)
    pn = node[2]
    assert got["checkpoints"] == [[pn.host, f"{pn.job_dir}/output/checkpoint"]]
    assert got["state"] == "failed"

    assert main(["demo", "summary", JOB]) == 0
    text = capsys.readouterr().out
    assert "loss 5.000 → 1.190 (fell by 76%)" in text and "rank-1: step 1 5.000 → step 3 1.667" in text


def test_render_without_loss_lines_says_so():
    report = JobReport("j", "pretrain", "running", 0, 10, None, (), (("h", "/out/checkpoint"),))
    assert report.first_loss is None and report.loss_drop is None
    text = render_report(report, ("orchestrate logs",))
    assert "no loss lines in the rank logs" in text and text.endswith("next:\n  orchestrate logs")


def test_loss_drop_is_the_share_of_the_first_loss_gone():
    ranks = (RankLoss("h", "rank-0", 1, 6.0, 9, 3.0), RankLoss("h", "rank-1", 1, 6.0, 9, 2.0))
    report = JobReport("j", "pretrain", "succeeded", 9, 9, 100.0, ranks, ())
    assert report.last_loss == pytest.approx(2.5) and report.loss_drop == pytest.approx(1 - 2.5 / 6)
