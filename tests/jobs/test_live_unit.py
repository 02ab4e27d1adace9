"""The live table and the fail-fast assessment, rendered and decided without any node."""

from __future__ import annotations

from orchestrator.jobs.model import JobState, JobStatus, NodeStatus, Progress, RankStatus, RootCause
from orchestrator.launch.live import fmt_duration, render_text
from orchestrator.launch.watcher import assess, node_status


def status(state=JobState.RUNNING, cause=None):
    p = Progress(step=12, total_steps=56, loss=6.91, per_step_ms=400.0, tokens_per_s=160.0, eta_s=18.0)
    return JobStatus("20260101-000000-pretrain-abcd", "pretrain", state, 100.0, started=40.0, nodes=(
        NodeStatus("10.0.0.1", True, "running", ranks=(
            RankStatus("10.0.0.1", "scheduler", None, "running", cpu_percent=1.0),
            RankStatus("10.0.0.1", "rank-0", 0, "running", cpu_percent=98.0, progress=p))),
        NodeStatus("10.0.0.2", False, "running", error="no answer", ranks=(
            RankStatus("10.0.0.2", "rank-1", 1, "exited", exit_code=137, signal="SIGKILL"),)),
    ), root_cause=cause)  # fmt: skip


def test_live_table_renders_every_rank_and_the_progress():
    text = render_text(status())
    assert "job 20260101-000000-pretrain-abcd (pretrain) running" in text
    assert "0/56 steps" in text  # rank-1 has no progress yet: overall counts the slowest rank
    row = next(line for line in text.splitlines() if "rank-0" in line)
    assert all(x in row for x in ("running", "12/56", "6.9100", "160", "0:18", "98"))
    assert "exit 137 (SIGKILL)" in text and "10.0.0.2 (silent)" in text


def test_live_table_names_the_root_cause_with_log_lines():
    cause = RootCause("10.0.0.2", "rank-1", 1, 137, "exited 137 (SIGKILL)", 5.0, ("boom", "Killed"))
    text = render_text(status(JobState.FAILED, cause))
    assert "root cause: rank-1 on 10.0.0.2: exited 137 (SIGKILL)" in text and "| Killed" in text


def test_durations():
    assert [fmt_duration(x) for x in (None, 5, 65, 3725)] == ["-", "0:05", "1:05", "1:02:05"]


def agent_answer(state="running", *procs):
    """The agent's ``status`` JSON (as node_agent prints it), parsed by the agent client."""
    import json

    from orchestrator.agent.client import parse_status
    from orchestrator.transport import RunResult

    rows = [dict(name=n, rank=r, role="rank", state=st, pid=100 + i, pgid=100 + i, log=f"/l/{n}", exit_code=c,
                 killed_by_agent=k) for i, (n, r, st, c, k) in enumerate(procs)]  # fmt: skip
    data = dict(ok=True, job_id="j", node="a", state=state, supervisor_pid=1, supervisor_alive=True, heartbeat_age=0.1,
                started=1.0, ended=None, root_cause=None, stopping=None, end_order=[], processes=rows)  # fmt: skip
    return parse_status(RunResult("a", "agent status", 0, json.dumps(data), "", 0.1))


def test_assess_fail_fast_rules():
    ok = node_status("a", agent_answer("running", ("rank-0", 0, "running", None, False)), 10.0)
    bad = node_status("b", agent_answer("failed", ("rank-1", 1, "exited", 1, False)), 10.0)
    assert assess([ok], 11.0, 20.0).state == JobState.RUNNING
    verdict = assess([ok, bad], 11.0, 20.0)
    assert verdict.state == JobState.FAILED and "rank-1 on b exited 1" in verdict.reason
    silent = NodeStatus("b", False, "running", last_seen=0.0, error="timeout")
    assert assess([ok, silent], 15.0, 20.0).state == JobState.RUNNING  # not silent long enough yet
    lost = assess([ok, silent], 25.0, 20.0)
    assert lost.state == JobState.FAILED and lost.lost == ("b",)
    done = node_status("a", agent_answer("succeeded", ("rank-0", 0, "exited", 0, False)), 10.0)
    assert assess([done, done], 11.0, 20.0).state == JobState.SUCCEEDED
    gone = node_status("a", agent_answer("unknown", ("rank-0", 0, "lost", None, False)), 10.0)
    assert assess([gone], 11.0, 20.0).state == JobState.FAILED
