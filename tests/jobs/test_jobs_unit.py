"""Fast tests of the job model: ids, state moves, root cause, progress/ETA, the state folder."""

from __future__ import annotations

import stat

import pytest

from orchestrator.errors import InputError
from orchestrator.jobs.events import append_event, read_events
from orchestrator.jobs.ids import is_job_id, new_job_id
from orchestrator.jobs.model import (
    JobState,
    JobStatus,
    NodeStatus,
    Progress,
    RankStatus,
    can_move,
    eta_seconds,
    move,
    overall,
)
from orchestrator.jobs.rootcause import pick_root_cause
from orchestrator.jobs.state import JobDir, list_jobs, resolve_job, resolve_to_stop, unfinished_jobs


def rank(host="a", r=0, code=None, ended=None, killed=False, sig=None, state="exited", tail=()):
    return RankStatus(host, f"rank-{r}", r, state, exit_code=code, ended=ended, killed_by_agent=killed, signal=sig,
                      log_tail=tuple(tail))  # fmt: skip


def test_job_ids_sort_by_time_and_are_unique():
    a = new_job_id("pretrain", now=0, suffix="00ff")
    assert a == "19700101-000000-pretrain-00ff" and is_job_id(a)
    assert new_job_id("pretrain", now=60) > a
    assert len({new_job_id("lora", now=0) for _ in range(50)}) > 40
    assert not is_job_id("../etc") and not is_job_id("19700101-000000-pretrain-00ff/x")
    with pytest.raises(ValueError):
        new_job_id("pre train", now=0)


def test_state_moves():
    assert JobState.FAILED.is_terminal() and not JobState.STOPPING.is_terminal()
    assert can_move(JobState.RUNNING, JobState.SUCCEEDED)
    assert can_move(JobState.STAGING, JobState.FAILED)
    assert not can_move(JobState.SUCCEEDED, JobState.RUNNING)
    assert not can_move(JobState.STOPPING, JobState.SUCCEEDED)
    with pytest.raises(ValueError, match="from failed to running"):
        move(JobState.FAILED, JobState.RUNNING)


def test_root_cause_is_first_failure_not_a_143_peer():
    nodes = [
        NodeStatus(
            "a", True, "failed", ranks=(rank("a", 0, 143, ended=5.0, sig="SIGTERM"), rank("a", 1, 0, 9.0))
        ),
        NodeStatus(
            "b",
            True,
            "failed",
            ranks=(rank("b", 2, 137, ended=7.0, tail=["x", "Killed", ""]), rank("b", 3, 1, ended=8.0)),
        ),  # fmt: skip
    ]
    cause = pick_root_cause(nodes)
    assert (cause.host, cause.rank, cause.exit_code) == ("b", 2, 137)
    assert cause.reason == "exited 137: Killed"
    progress_only = rank(
        "b", 2, 137, ended=7.0, sig="SIGKILL", tail=["{ Epoch:[ 1/ 1], step:[ 1/ 22], loss: 7.0 }"]
    )
    assert (
        pick_root_cause([NodeStatus("b", True, "failed", ranks=(progress_only,))]).reason
        == "exited 137 (SIGKILL)"
    )
    hccl = rank("a", 0, 1, ended=1.0, tail=["EI0006: remote rank 3 did not send in time", "  at step 9", ""])
    assert pick_root_cause([NodeStatus("a", True, "failed", ranks=(hccl,))]).reason.endswith(
        "EI0006: remote rank 3 did not send in time"
    )


def test_root_cause_skips_ranks_stopped_by_the_agent_and_falls_back_to_consequences():
    only_peers = [
        NodeStatus("a", True, "failed", ranks=(rank("a", 0, 143, 3.0), rank("a", 1, 1, 2.0, killed=True)))
    ]
    assert pick_root_cause(only_peers).rank == 1  # every failure a consequence: the earliest
    assert pick_root_cause([NodeStatus("a", True, "succeeded", ranks=(rank("a", 0, 0, 1.0),))]) is None


def test_root_cause_silent_node_before_peers_that_died_of_it():
    nodes = [
        NodeStatus("a", True, "failed", ranks=(rank("a", 0, 1, ended=50.0),)),
        NodeStatus(
            "b",
            False,
            "running",
            last_seen=20.0,
            error="no answer within 10s",
            ranks=(rank("b", 1, state="running"),),
        ),
    ]
    cause = pick_root_cause(nodes, lost=["b"])
    assert (cause.host, cause.what) == ("b", "node") and "no answer" in cause.reason


def test_overall_progress_and_eta():
    assert (
        eta_seconds(10, 110, 500.0) == 50.0
        and eta_seconds(5, 5, 100.0) == 0.0
        and eta_seconds(1, 2, None) is None
    )
    p0, p1 = Progress(10, 100, 2.0, 1000.0, 100.0, None), Progress(20, 100, 2.5, 500.0, 150.0, 30.0)
    st = JobStatus("j", "pretrain", JobState.RUNNING, 0.0, nodes=(
        NodeStatus("a", True, "running", ranks=(RankStatus("a", "scheduler", None, "running"),
                                                 RankStatus("a", "rank-0", 0, "running", progress=p0))),
        NodeStatus("b", True, "running", ranks=(RankStatus("b", "rank-1", 1, "running", progress=p1),)),
    ))  # fmt: skip
    o = overall(st)
    assert (o.step, o.total_steps, o.ranks_running, o.ranks_total) == (10, 100, 2, 2)
    assert o.eta_s == 90.0 and o.tokens_per_s == 250.0 and o.fraction == 0.1
    assert JobStatus.from_dict(st.to_dict()) == st


def test_state_folder_is_private_and_resolvable(tmp_path):
    root = tmp_path / "jobs"
    job = JobDir("20260101-000000-pretrain-abcd", root).create()
    job.write("job.json", "{}")
    append_event(job.path, "created", x=1)
    append_event(job.path, "started")
    assert [e["kind"] for e in read_events(job.path)] == ["created", "started"]
    assert stat.S_IMODE(job.path.stat().st_mode) == 0o700
    for f in job.path.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    JobDir("20260102-000000-lora-0001", root).create().write("job.json", "{}")
    assert list_jobs(root) == ["20260101-000000-pretrain-abcd", "20260102-000000-lora-0001"]
    assert resolve_job(None, root).job_id.endswith("lora-0001")
    assert resolve_job("abcd", root).job_id.startswith("20260101")
    with pytest.raises(InputError, match="no job"):
        resolve_job("nope", root)


def test_stop_without_a_job_id_never_guesses_between_running_jobs(tmp_path):
    """Two jobs running at once (other NPUs of the same nodes): `stop` without JOB names them and stops
    neither; with one running it stops that one, even when a later job already ended; with none, the latest."""
    root = tmp_path / "jobs"

    def job(job_id: str, state: JobState) -> JobDir:
        jd = JobDir(job_id, root).create()
        jd.write("job.json", "{}")
        jd.save_status(JobStatus(job_id, "pretrain", state, 1.0))
        return jd

    job("20260101-000000-pretrain-aaaa", JobState.SUCCEEDED)
    assert resolve_to_stop(None, root).job_id.endswith("aaaa")  # nothing runs: the latest, as before
    job("20260101-000100-pretrain-bbbb", JobState.RUNNING)
    job("20260101-000200-eval-cccc", JobState.FAILED)
    assert resolve_to_stop(None, root).job_id.endswith("bbbb")  # the one running job, not the latest
    job("20260101-000300-eval-dddd", JobState.STARTING)
    assert unfinished_jobs(root) == ["20260101-000100-pretrain-bbbb", "20260101-000300-eval-dddd"]
    with pytest.raises(
        InputError, match="2 jobs are running: 20260101-000100-pretrain-bbbb, 20260101-000300-eval"
    ):
        resolve_to_stop(None, root)
    assert resolve_to_stop("cccc", root).job_id.endswith("cccc")  # a named job, running or not


def test_a_finished_job_keeps_its_outcome(tmp_path):
    job = JobDir("20260101-000000-pretrain-abcd", tmp_path).create()
    for state in (JobState.STAGING, JobState.STARTING, JobState.RUNNING, JobState.FAILED):
        assert job.save_status(JobStatus(job.job_id, "pretrain", state, 1.0))
    assert not job.save_status(JobStatus(job.job_id, "pretrain", JobState.RUNNING, 2.0))  # a late snapshot
    assert job.status().state == JobState.FAILED
    assert read_events(job.path)[-1]["kind"] == "illegal-move"
