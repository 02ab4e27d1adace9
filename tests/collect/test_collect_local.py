"""The whole of ``collect-logs`` through the CLI on a local 'node' plus one that cannot be reached (fast)."""

from __future__ import annotations

import dataclasses
import json

from orchestrator.cli.main import main
from orchestrator.collect import collect_after_failure
from orchestrator.jobs.events import read_events
from orchestrator.jobs.model import JobState, JobStatus
from orchestrator.jobs.state import JobDir
from tests.collect.conftest import JOB, tree

BAD = "10.255.0.9"


def failed_job(node, tmp_path, monkeypatch) -> JobDir:
    """The job of the ``node`` fixture recorded in a private ORCHESTRATE_HOME, with a second node whose
    known_hosts file is missing (refused before any network traffic)."""
    record, spec, _, _, plan = node
    monkeypatch.setenv("ORCHESTRATE_HOME", str(tmp_path / "orch"))
    bad = dataclasses.replace(
        spec, host=BAD, local=False, ssh=dataclasses.replace(spec.ssh, known_hosts=str(tmp_path / "nope"))
    )
    record = dataclasses.replace(record, nodes=record.nodes + (bad,), agent_path=record.agent_path + ((BAD, "/x/a.py"),),
                                 agent_workdir=record.agent_workdir + ((BAD, "/x"),))  # fmt: skip
    jd = JobDir(JOB).create()
    jd.save_record(record)
    jd.save_plan(plan)
    jd.save_status(
        JobStatus(
            JOB, "pretrain", JobState.FAILED, record.created + 150, record.created, record.created + 150
        )
    )
    return jd


def test_cli_collects_names_the_cause_and_the_unreachable_node(node, tmp_path, monkeypatch, capsys):
    jd = failed_job(node, tmp_path, monkeypatch)
    before = tree(node[3])
    out = tmp_path / "out"
    assert main(["collect-logs", "--out", str(out)]) == 4  # the latest job; one node missing
    printed = capsys.readouterr()
    assert (
        "1/2 node(s) collected" in printed.out and "root cause: rank-1 on 127.0.0.1: exited 1" in printed.out
    )
    assert "| RuntimeError: rank 1 broke" in printed.out
    assert f"not every node was collected: {BAD}" in printed.err and "known_hosts" in printed.err
    assert tree(node[3]) == before
    ix = json.loads((out / JOB / "index.json").read_text())
    assert ix["root_cause"]["source"] == "collected" and ix["root_cause"]["rank"] == 1
    assert [n["collected"] for n in ix["nodes"]] == [True, False]
    assert ix["loss_plot"] == "loss.png" and (out / JOB / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert f"| {BAD} | no: " in (out / JOB / "INDEX.md").read_text()
    assert (out / JOB / "127.0.0.1" / "plan" / "env_rank_1.sh").is_file()
    assert read_events(jd.path)[-1]["kind"] == "logs-collected"


def test_hook_after_failure_never_raises(node, tmp_path, monkeypatch):
    jd = failed_job(node, tmp_path, monkeypatch)
    (tmp_path / "orch" / "logs").write_text("a file where the default logs folder should be")
    assert collect_after_failure(jd) is None
    assert read_events(jd.path)[-1]["kind"] == "logs-collect-failed"
