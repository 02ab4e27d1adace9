"""The controller-side watcher through the real channel, on this machine's local node (real agent, stand-in
ranks, the node-side ``watch`` stream as a child process): a failed rank fails the job as soon as its
event arrives, a dropped channel reconnects without losing an event, and a node gone silent is declared
lost after the record's failure-detection time."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import signal
import threading
import time
from pathlib import Path

import pytest

from orchestrator.agent.node import base as node_base
from orchestrator.jobs.model import JobState
from orchestrator.jobs.state import JobDir
from orchestrator.launch import agent_rpc
from orchestrator.launch.node_channel import NodeChannel
from orchestrator.launch.start import launch
from orchestrator.launch.stop import stop_job
from orchestrator.launch.watcher import Watcher
from orchestrator.transport import LocalTransport
from tests.agent.conftest import job_pids, job_pids_after_exit
from tests.launch.conftest import local_stand_in_plan, placeholder_dataset, wait_for


@pytest.fixture
def local(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(node_base.ENV_SCOPE, f"watcher-{tmp_path.name}")
    data = placeholder_dataset(tmp_path)
    plan, inv = local_stand_in_plan(tmp_path, data)
    started = []
    yield lambda: started.append(launch(plan, inv)) or started[-1]
    for s in started:
        if job_pids(s.job.job_id):
            stop_job(JobDir(s.job.job_id), grace=1.0)


def _ranks(job: JobDir) -> dict:
    st = job.status()
    return {r.name: r for r in st.ranks} if st else {}


def test_a_killed_rank_fails_the_job_at_once_and_nothing_is_left(local):
    done = local()
    job, result = done.job, {}
    watcher = Watcher(job, poll_s=0.5)
    thread = threading.Thread(target=lambda: result.update(status=watcher.run()), daemon=True)
    thread.start()
    wait_for(lambda: (r := _ranks(job)) and all(x.progress for n, x in r.items() if n != "scheduler"), 30,
             "progress of every rank in status.json")  # fmt: skip
    victim = _ranks(job)["rank-1"]
    t0 = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)
    thread.join(30)
    took = time.monotonic() - t0
    status = result["status"]
    assert status.state == JobState.FAILED, status
    assert (status.root_cause.what, status.root_cause.exit_code) == ("rank-1", 137)
    assert took < 10, took  # event-driven: well under a second unloaded
    assert job_pids_after_exit(job.job_id) == []
    peers = {r.name: r for r in status.ranks}
    assert all(r.state == "exited" for r in peers.values()), peers


def test_a_dropped_channel_reconnects_after_its_last_seq_and_loses_nothing(local):
    done = local()
    node = done.record.nodes[0]
    inbox: queue.Queue = queue.Queue()
    argv = agent_rpc.commands(node.python, node.workdir)
    transport = LocalTransport(node.host)
    opened = []

    def opener(after: int):
        opened.append(after)
        return transport.open_stream(argv.watch(done.job.job_id, after, 0.2))

    channel = NodeChannel(node.host, opener, inbox).start()
    got = []

    def collect(until, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                host, message = inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            got.append(message)
            if until(message):
                return message
        raise AssertionError(f"not seen: {got[-5:]}")

    try:
        collect(lambda m: m["kind"] == "progress")
        channel._stream.proc.kill()  # the node-side watch dies: its channel drops
        collect(lambda m: m["kind"] == "down")
        collect(lambda m: m["kind"] == "hello")
        assert len(opened) == 2 and opened[1] > 0
        reply = channel.request("stop", grace=1.0).result(timeout=30)
        assert reply["none_left"]
        collect(lambda m: m["kind"] == "state" and m["state"] == "stopped")
    finally:
        channel.close()
    journal = Path(node.workdir) / "agent" / "jobs" / done.job.job_id / "journal.jsonl"
    written = [json.loads(line)["seq"] for line in journal.read_text().splitlines()]
    received = sorted({m["seq"] for m in got if m["kind"] not in ("heartbeat", "hello", "down", "gap")})
    assert received == written  # every event once at least, in spite of the drop


def test_a_silent_node_is_lost_after_the_failure_detection_time(local):
    done = local()
    job = done.job
    job.save_record(dataclasses.replace(job.record(), failure_detect_s=3.0, heartbeat_s=0.3))
    watcher = Watcher(job, poll_s=0.3)
    result = {}
    thread = threading.Thread(target=lambda: result.update(status=watcher.run()), daemon=True)
    thread.start()
    wait_for(
        lambda: watcher.channels and all(c.connected for c in watcher.channels.values()), 20, "connected"
    )
    watch_pid = next(iter(watcher.channels.values()))._stream.proc.pid
    os.kill(watch_pid, signal.SIGSTOP)  # alive, silent: as a node behind a cut link
    t0 = time.monotonic()
    try:
        thread.join(30)
        took = time.monotonic() - t0
    finally:
        with contextlib.suppress(ProcessLookupError):  # the watcher closed its channel: gone already
            os.kill(watch_pid, signal.SIGCONT)
    status = result["status"]
    assert status.state == JobState.FAILED and "not answering" in status.message, status
    assert status.root_cause.what == "node"
    assert 2.5 < took < 3.0 + 10, took  # the detection time, plus the watcher's round and the load
