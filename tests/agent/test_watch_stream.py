"""The node-side ``watch`` stream run for real (agent subprocess, dummy ranks): events as they happen,
heartbeats, commands on stdin, resuming after a seq without losing events, and the bounded journal."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path

from orchestrator.agent.node.journal import Journal, JournalReader
from orchestrator.agent.node.progress import LogFollower
from tests.agent.conftest import AGENT, AgentHarness, job_pids_after_exit, wait_for_file


class Watch:
    """The agent's ``watch`` as a child process: write commands, read JSON lines."""

    def __init__(self, agent: AgentHarness, job: str, after: int = 0, heartbeat: float = 0.3):
        argv = [agent.python, str(AGENT), "--workdir", str(agent.workdir), "watch", "--job", job,
                "--after", str(after), "--heartbeat", str(heartbeat)]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=agent.env())
        self.seen: list[dict] = []
        self.buf = b""

    def next(self, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            assert left > 0 and select.select([self.proc.stdout], [], [], left)[0], "no line from watch"
            self.buf += os.read(self.proc.stdout.fileno(), 65536)
        line, self.buf = self.buf.split(b"\n", 1)
        self.seen.append(json.loads(line))
        return self.seen[-1]

    def until(self, check, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.next(max(0.1, deadline - time.monotonic()))
            if check(line):
                return line
        raise AssertionError(f"not seen within {timeout}s: {self.seen[-5:]}")

    def send(self, **request) -> None:
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()

    def close(self) -> int:
        self.proc.stdin.close()
        self.proc.stdout.read()
        return self.proc.wait(timeout=30)


def test_events_heartbeats_commands_and_resume(agent: AgentHarness, tmp_path: Path):
    ranks = [
        ("--sleep", "60", "--steps", "2", "--ready", str(tmp_path / "r0")),
        (
            "--sleep",
            "60",
        ),
    ]
    code, started = agent.start("job-w", ranks, seq_length=64)
    assert code == 0, started
    wait_for_file(tmp_path / "r0")
    w = Watch(agent, "job-w")
    hello = w.next()
    assert hello["kind"] == "hello" and {p["name"] for p in hello["snapshot"]["processes"]} == {
        "rank-0",
        "rank-1",
    }
    started_names = {w.until(lambda m: m["kind"] == "rank-started")["name"] for _ in range(2)}
    assert started_names == {"rank-0", "rank-1"}
    progress = w.until(lambda m: m["kind"] == "progress")
    assert progress["name"] == "rank-0" and progress["progress"]["step"] == 2
    beat = w.until(lambda m: m["kind"] == "heartbeat")
    assert beat["state"] == "running" and beat["seq"] >= progress["seq"]

    w.send(id=1, op="status", lines=3)
    reply = w.until(lambda m: m["kind"] == "reply")
    assert reply["id"] == 1 and reply["ok"] and reply["answer"]["state"] == "running"
    w.send(id=2, op="tail", lines=1)
    reply = w.until(lambda m: m["kind"] == "reply")
    assert reply["answer"]["rank-0"] == ["rank 0 starting"] or reply["answer"]["rank-0"]
    last = max(m["seq"] for m in w.seen if "seq" in m and m["kind"] not in ("heartbeat",))
    assert w.close() == 0  # stdin closed: it ends

    # events written while nobody watched come after --after, in order, none lost
    code, stopped = agent.run("stop", "--job", "job-w", "--grace", "1")
    assert code == 0 and stopped["none_left"], stopped
    again = Watch(agent, "job-w", after=last)
    assert again.next()["snapshot"]["state"] == "stopped"
    exited = [again.until(lambda m: m["kind"] == "rank-exited") for _ in range(2)]
    assert {e["name"] for e in exited} == {"rank-0", "rank-1"} and all(e["killed_by_agent"] for e in exited)
    assert exited[0]["seq"] == last + 2  # `state: stopping` came first
    assert again.until(lambda m: m["kind"] == "state" and m["state"] == "stopped")
    assert again.close() == 0


def test_stop_on_the_channel_leaves_nothing(agent: AgentHarness, tmp_path: Path):
    code, started = agent.start("job-s", [("--sleep", "60", "--ready", str(tmp_path / "r0"))])
    assert code == 0, started
    wait_for_file(tmp_path / "r0")
    w = Watch(agent, "job-s")
    w.next()
    t0 = time.monotonic()
    w.send(id="s", op="stop", grace=1.0, release_wait=0)
    reply = w.until(lambda m: m["kind"] == "reply")
    assert reply["ok"] and reply["answer"]["none_left"], reply
    assert time.monotonic() - t0 < 5
    exited = next(m for m in w.seen if m["kind"] == "rank-exited")  # before the reply: the stop waits for it
    assert exited["killed_by_agent"] and exited["signal"] == "SIGTERM"
    assert w.close() == 0
    assert job_pids_after_exit("job-s") == []


def test_unknown_job_and_bad_command(agent: AgentHarness, tmp_path: Path):
    code, answer = agent.run("watch", "--job", "nope")
    assert code == 6 and "no job nope" in answer["error"]
    code, started = agent.start("job-b", [("--sleep", "30", "--ready", str(tmp_path / "r0"))])
    assert code == 0
    wait_for_file(tmp_path / "r0")
    w = Watch(agent, "job-b")
    w.next()
    w.send(id=7, op="reboot")
    reply = w.until(lambda m: m["kind"] == "reply")
    assert reply["id"] == 7 and not reply["ok"] and "unknown command" in reply["error"]
    assert w.close() == 0


def test_the_journal_is_bounded_and_a_late_reader_gets_a_gap(tmp_path: Path):
    journal = Journal(str(tmp_path), max_bytes=2000)
    reader = JournalReader(str(tmp_path), 0)
    assert [e["seq"] for e in reader.read()] == []
    for i in range(10):
        journal.append("progress", name="rank-0", step=i)
    assert [e["seq"] for e in reader.read()] == list(range(1, 11))
    for i in range(200):
        journal.append("progress", name="rank-0", step=i, pad="x" * 40)
    assert (tmp_path / "journal.jsonl").stat().st_size <= 2100
    got = reader.read(check_rotation=True)
    assert got[0]["kind"] == "gap" and got[-1]["seq"] == 210
    seqs = [e["seq"] for e in got[1:]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert Journal(str(tmp_path)).seq == 210  # a new writer continues the count


def test_log_follower_reads_only_new_bytes(tmp_path: Path):
    log = tmp_path / "rank.log"
    follower = LogFollower(str(log), seq_length=8)
    assert follower.poll() == (None, None)
    line = "{ Epoch:[  1/  1], step:[    %d/    4], loss: 5.000000, per_step_time: 10ms, lr: 1e-4, }\n"
    log.write_text(line % 1)
    progress, result = follower.poll()
    assert progress["step"] == 1 and result is None
    assert follower.poll() == (None, None)  # nothing new
    with log.open("a") as f:
        f.write(line % 2 + "eval: loss 1.5, perplexity 4.48, rows 3, tokens 90\n")
    progress, result = follower.poll()
    assert progress["step"] == 2 and result == {"loss": 1.5, "perplexity": 4.48, "rows": 3, "tokens": 90}
