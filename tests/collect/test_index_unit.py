"""Fast tests of the index: root cause from the agents' records, error lines, rotated logs, the Markdown."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.collect import layout
from orchestrator.collect.gather import NodeCollect
from orchestrator.collect.index import (
    build_index,
    error_lines,
    npu_summary,
    rank_log,
    render_markdown,
    write_index,
)
from orchestrator.jobs.model import JobState, JobStatus, RootCause
from orchestrator.jobs.state import JobRecord, ProcessRef

JOB = "20260101-000000-pretrain-abcd"
LOG = "/w/jobs/c-pretrain/output/log/rank_{}/stdout.log"
TRACE = [
    "step 1 ok",
    "Traceback (most recent call last):",
    '  File "x.py", line 3',
    "RuntimeError: out of memory",
]


def proc(rank, code, ended, killed=False, sig=None):
    return {"name": f"rank-{rank}", "rank": rank, "role": "rank", "log": LOG.format(rank), "pid": 100 + rank,
            "started": 1.0, "ended": ended, "returncode": code, "exit_code": code, "signal": sig,
            "killed_by_agent": killed}  # fmt: skip


def node(root: Path, host: str, procs: list[dict], logs: dict[int, tuple[str, list[str]]]) -> NodeCollect:
    """A collected host folder as gather leaves it: the agent's state.json and rank logs."""
    d = root / host
    (d / layout.AGENT).mkdir(parents=True)
    outcome = "failed" if any(p["exit_code"] for p in procs) else "succeeded"
    state = {"job_id": JOB, "node": host, "state": outcome, "started": 1.0, "ended": 10.0, "processes": procs}
    (d / layout.AGENT / "state.json").write_text(json.dumps(state))
    files = [(f"/w/agent/jobs/{JOB}/state.json", "agent/state.json")]
    for rank, (suffix, lines) in logs.items():
        arc = f"logs/rank_{rank}/stdout.log{suffix}"
        (d / arc).parent.mkdir(parents=True, exist_ok=True)
        (d / arc).write_text("\n".join(lines) + "\n")
        files.append((LOG.format(rank) + suffix, arc))
    return NodeCollect(host, d, files=tuple(files), archive_bytes=123, skipped_old=2)


def record(hosts=("10.0.0.1", "10.0.0.2")) -> JobRecord:
    procs = tuple(ProcessRef(h, f"rank-{i}", i, LOG.format(i)) for i, h in enumerate(hosts))
    return JobRecord(JOB, "pretrain", 0.0, "inv.yaml", (), (), (), procs, 1.0, 10.0, 3.0)


def two_nodes(tmp_path: Path) -> dict[str, NodeCollect]:
    # rank-0 died of the failure (143, own SIGTERM, and *earlier*); rank-1 is the cause (exit 3).
    a = node(tmp_path, "10.0.0.1", [proc(0, 143, 5.0, sig="SIGTERM")], {0: ("", ["step 1", "Terminated"])})
    b = node(tmp_path, "10.0.0.2", [proc(1, 3, 9.0)], {1: (".1700000000", TRACE)})
    return {"10.0.0.1": a, "10.0.0.2": b}


def test_cause_from_collected_records_skips_143_peer_and_finds_rotated_log(tmp_path):
    ix = build_index(record(), None, two_nodes(tmp_path), tmp_path)
    c = ix.root_cause
    assert (c.host, c.what, c.rank, c.exit_code, c.source) == ("10.0.0.2", "rank-1", 1, 3, "collected")
    assert c.log == "10.0.0.2/logs/rank_1/stdout.log.1700000000"
    assert c.error_lines == tuple(TRACE[1:])
    assert ix.state == "failed"
    assert {(r.name, r.exit_code) for r in ix.ranks} == {("rank-0", 143), ("rank-1", 3)}
    assert all(n.collected and "2 file(s) of earlier runs skipped" in n.notes for n in ix.nodes)


def test_monitor_verdict_wins_and_unreachable_node_is_listed(tmp_path):
    nodes = two_nodes(tmp_path)
    nodes["10.0.0.3"] = NodeCollect("10.0.0.3", None, "10.0.0.3:22: no answer within 2s")
    cause = RootCause("10.0.0.3", "node", None, None, "node not answering: timeout", 7.0)
    status = JobStatus(
        JOB, "pretrain", JobState.FAILED, 11.0, 1.0, 11.0, root_cause=cause, message="failed: x"
    )
    ix = build_index(record(("10.0.0.1", "10.0.0.2", "10.0.0.3")), status, nodes, tmp_path)
    assert (ix.root_cause.host, ix.root_cause.what, ix.root_cause.source) == ("10.0.0.3", "node", "monitor")
    lost = next(n for n in ix.nodes if n.host == "10.0.0.3")
    assert not lost.collected and "no answer" in lost.error
    assert next(r for r in ix.ranks if r.host == "10.0.0.3").log is None  # known from the record only
    md, js = write_index(ix, tmp_path)
    text = md.read_text()
    assert "**node on 10.0.0.3**: node not answering" in text and "no: 10.0.0.3:22: no answer" in text
    assert json.loads(js.read_text())["root_cause"]["host"] == "10.0.0.3"


def test_successful_job_has_no_cause(tmp_path):
    ok = node(tmp_path, "h", [proc(0, 0, 5.0)], {0: ("", ["done"])})
    ix = build_index(record(("h",)), None, {"h": ok}, tmp_path)
    assert ix.root_cause is None and ix.state == "succeeded" and "No process failed." in render_markdown(ix)


def test_error_lines_and_rank_log_lookup():
    assert error_lines(["a", "[ERROR] HCCL EI0006 timeout", "b", "EJ0001 init failed", "c"]) == (
        "[ERROR] HCCL EI0006 timeout", "EJ0001 init failed")  # fmt: skip
    assert error_lines(["x", "", "last words"], limit=1) == ("last words",)
    c = NodeCollect("h", Path("/out/h"), files=(("/l/a.log.5", "logs/a.log.5"), ("/l/a.log.9", "logs/a.log.9"),
                                                 ("/l/a.log.bak", "logs/a.log.bak")))  # fmt: skip
    assert rank_log(c, "/l/a.log") == Path("/out/h/logs/a.log.9")  # the newest rotated copy
    assert rank_log(c, "/l/b.log") is None


def test_npu_summary_names_unhealthy_npus_and_holders(tmp_path):
    capture = Path(__file__).parents[1] / "ascend" / "data" / "npu-smi_info_22.0.2_93col_8npu_procs.txt"
    text = capture.read_text()
    snap = tmp_path / "h" / layout.snapshot_name(["npu-smi", "info"])
    snap.parent.mkdir(parents=True)
    snap.write_text(text)
    c = NodeCollect("h", tmp_path / "h")
    summary = npu_summary(c)
    assert summary.startswith(
        "8 NPU(s), all OK; still held: NPU 0 by pid 7000 python, NPU 1 by pid 7000 python"
    )
    snap.write_text("npu-smi: command failed\n")
    assert npu_summary(c).startswith("npu-smi output not understood: ") and "command failed" in npu_summary(c)
    assert npu_summary(NodeCollect("h", None, "down")) == "-"
