"""The node agent run for real as a subprocess, with dummy ranks (no MindSpore): start, status,
fail-fast, stop, refusal of a busy node, survival of the caller's death, Python 3.9."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.agent.node import base as node_base
from tests.agent.conftest import AGENT, DUMMY, AgentHarness, job_pids, job_pids_after_exit, wait_for_file
from tests.fixtures.captures import CAPTURES

SLEEP = ("--sleep", "60")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_start_status_stop_leaves_nothing(agent: AgentHarness, tmp_path: Path):
    grandchild = tmp_path / "grandchild.pid"
    ranks = [
        (*SLEEP, "--ignore-term", "--grandchild", str(grandchild), "--ready", str(tmp_path / "r0")),
        (*SLEEP, "--steps", "3", "--ready", str(tmp_path / "r1")),
    ]
    sched = agent.rank(*SLEEP, log=str(tmp_path / "logs" / "scheduler.log"))
    code, started = agent.start("job-a", ranks, scheduler=sched, seq_length=64)
    assert code == 0, started
    assert [p["name"] for p in started["processes"]] == ["scheduler", "rank-0", "rank-1"]
    assert all(p["pid"] == p["pgid"] for p in started["processes"])
    wait_for_file(tmp_path / "r0")
    wait_for_file(tmp_path / "r1")

    st = agent.status("job-a")
    assert st["state"] == "running" and st["supervisor_alive"] and st["heartbeat_age"] < 30
    procs = {p["name"]: p for p in st["processes"]}
    assert all(p["state"] == "running" and p["rss_bytes"] > 0 for p in procs.values())
    assert procs["rank-1"]["progress"]["step"] == 3 and procs["rank-1"]["progress"]["tokens_per_s"] == 512.0
    assert procs["rank-0"]["log_tail"][-1] == "rank 0 starting"

    jdir = agent.workdir / "jobs" / "job-a"
    assert stat.S_IMODE(jdir.stat().st_mode) == 0o700
    for f in ("state.json", "spec.json"):
        assert stat.S_IMODE((jdir / f).stat().st_mode) == 0o600

    code, stopped = agent.run("stop", "--job", "job-a", "--grace", "1.5")
    assert code == 0 and stopped["none_left"] and stopped["left"] == [], stopped
    assert stopped["killed"][str(procs["rank-0"]["pid"])] == "KILL"  # ignored TERM
    assert stopped["killed"][str(procs["rank-1"]["pid"])] == "TERM"
    gpid = int(grandchild.read_text())
    assert str(gpid) in stopped["killed"] and not _alive(gpid)
    assert job_pids("job-a") == []
    final = agent.status("job-a")
    assert final["state"] == "stopped" and not final["supervisor_alive"]
    assert all(p["killed_by_agent"] and p["state"] == "exited" for p in final["processes"])


def test_fail_fast_names_the_first_failure(agent: AgentHarness):
    code, _ = agent.start("job-ff", [SLEEP, ("--sleep", "0.3", "--exit", "3"), SLEEP])
    assert code == 0
    st = agent.wait("job-ff", ["failed"])
    cause = st["root_cause"]
    assert (cause["name"], cause["rank"], cause["exit_code"]) == ("rank-1", 1, 3)
    assert cause["log_tail"][-1] == "rank 1 exiting with 3"
    assert st["end_order"][0] == "rank-1" and st["stopping"]["reason"] == "fail-fast: rank-1 exited 3"
    peers = [p for p in st["processes"] if p["name"] != "rank-1"]
    assert all((p["exit_code"], p["returncode"], p["signal"]) == (143, -15, "SIGTERM") for p in peers)
    assert all(p["killed_by_agent"] and p["end_seq"] > 1 for p in peers)
    assert job_pids_after_exit("job-ff") == []
    code, listing = agent.run("list")
    assert code == 0 and [(j["job_id"], j["state"]) for j in listing["jobs"]] == [("job-ff", "failed")]


def test_refuses_busy_node_then_force_stops_only_jobs_recorded_here(agent: AgentHarness):
    assert agent.start("job-old", [SLEEP])[0] == 0
    stray = subprocess.Popen(  # marked by an agent, but for a job this agent has no record of
        [sys.executable, "-c", "import time; time.sleep(60)"], env=agent.env(**{node_base.ENV_JOB: "stray"})
    )
    try:
        code, refused = agent.start("job-new", [SLEEP])
        assert code == node_base.EXIT_BUSY and not refused["ok"]
        by_pid = {c["pid"]: c for c in refused["conflicts"]}
        old = agent.status("job-old")
        rank_pid = old["processes"][0]["pid"]
        assert by_pid[rank_pid]["job"] == "job-old" and str(DUMMY) in by_pid[rank_pid]["cmd"]
        assert by_pid[old["supervisor_pid"]]["name"] == "supervisor"
        assert by_pid[stray.pid]["job"] == "stray" and by_pid[stray.pid]["source"] == "environment"
        assert not (agent.workdir / "jobs" / "job-new").exists()

        code, forced = agent.start("job-new", [SLEEP], "--force")
        assert code == node_base.EXIT_BUSY, forced
        assert f"pid {stray.pid} carries the marks of job stray, which is not recorded" in forced["error"]
        assert stray.poll() is None  # never stopped: --force stops only jobs recorded here
        assert agent.status("job-old")["state"] == "stopped" and job_pids("job-old") == []
        stray.kill()
        stray.wait()
        code, forced = agent.start("job-new", [SLEEP], "--force")
        assert code == 0, forced
        assert agent.status("job-new")["state"] == "running"
        assert agent.run("stop", "--job", "job-new", "--grace", "1")[0] == 0
    finally:
        stray.kill()
        stray.wait()


def test_force_leaves_a_foreign_npu_holder_alone_and_names_it(agent: AgentHarness, tmp_path: Path):
    """A process this orchestrator did not start holds a needed NPU: refused, with or without --force,
    naming its pid, user and NPU; it keeps running. Once it exits, npu-smi listing it still blocks."""
    fixture = CAPTURES / "npu-smi_info_910B3_25.2.0_8npu_idle_plus_one_unnamed.txt"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True, env=agent.env()
    )
    try:
        table = fixture.read_text().replace("1333928", str(holder.pid).ljust(7))
        fake = tmp_path / "bin" / "npu-smi"
        fake.parent.mkdir()
        (tmp_path / "table.txt").write_text(table)
        fake.write_text(f"#!/bin/sh\ncat {tmp_path / 'table.txt'}\n")
        fake.chmod(0o755)
        env = agent.env(PATH=f"{fake.parent}:{os.environ['PATH']}")

        code, busy = agent.run("check-devices", "--devices", "1,2", env=env)
        assert code == node_base.EXIT_BUSY and busy["holders"][0]["pid"] == holder.pid and busy["npu_smi"]
        code, free = agent.run("check-devices", "--devices", "0,1", env=env)
        assert code == 0 and free["free"] and free["holders"] == []

        spec = agent.spec("job-npu", [SLEEP], devices=[2], release_wait_s=0.3)
        for flags in ((), ("--force",)):
            code, refused = agent.run("start", "--spec", spec, *flags, env=env)
            assert code == node_base.EXIT_BUSY, refused
            assert [(c["pid"], c["source"], c["npu"], c["user"]) for c in refused["conflicts"]] == [
                (holder.pid, "npu-smi", 2, pwd.getpwuid(os.getuid()).pw_name)
            ]
            assert f"NPU 2 is held by pid {holder.pid} (user " in refused["error"]
            assert "--force never stops it" in refused["error"]
            assert holder.poll() is None  # left alone
        holder.kill()
        holder.wait()
        code, refused = agent.run("start", "--spec", spec, "--force", env=env)
        assert code == node_base.EXIT_BUSY  # exited, but the (static) table still lists it: not released
        assert f"npu-smi still lists pid {holder.pid} on NPU 2 after waiting" in refused["error"]
        assert refused["released"]["free"] is False and not (agent.workdir / "jobs" / "job-npu").exists()
    finally:
        holder.kill()
        holder.wait()


def test_spawn_failure_stops_the_rest(agent: AgentHarness):
    spec = Path(agent.spec("job-bad", [SLEEP, ()]))
    data = json.loads(spec.read_text())
    data["ranks"][1]["argv"] = ["/nonexistent/python"]
    spec.write_text(json.dumps(data))
    code, answer = agent.run("start", "--spec", str(spec))
    assert code == node_base.EXIT_SPAWN, answer
    assert "FileNotFoundError" in answer["processes"][1]["spawn_error"]
    st = agent.wait("job-bad", ["failed"])
    assert st["root_cause"]["name"] == "rank-1" and st["processes"][0]["signal"] == "SIGTERM"


def test_stop_without_a_supervisor(agent: AgentHarness):
    assert agent.start("job-lost", [SLEEP])[0] == 0
    sup = agent.status("job-lost")["supervisor_pid"]
    os.kill(sup, signal.SIGKILL)  # e.g. the OOM killer: the ranks carry on alone
    st = agent.wait("job-lost", ["unknown"])
    assert not st["supervisor_alive"] and st["processes"][0]["state"] == "running"
    code, stopped = agent.run("stop", "--job", "job-lost", "--grace", "1")
    assert code == 0 and stopped["state"] == "stopped" and stopped["none_left"], stopped
    assert job_pids_after_exit("job-lost") == []
    assert agent.status("job-lost")["processes"][0]["killed_by_agent"]


def test_supervisor_survives_the_death_of_its_caller(agent: AgentHarness):
    spec = agent.spec("job-orphan", [SLEEP])
    caller = (
        "import subprocess, sys, time\n"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    cmd = [
        sys.executable,
        "-c",
        caller,
        sys.executable,
        str(AGENT),
        "--workdir",
        str(agent.workdir),
        "start",
        "--spec",
        spec,
    ]
    wrapper = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.PIPE, text=True, env=agent.env()
    )
    assert wrapper.stdout.readline().strip() == "started"
    os.killpg(wrapper.pid, signal.SIGHUP)  # what a dropped SSH session does, then worse
    os.killpg(wrapper.pid, signal.SIGKILL)
    wrapper.wait()
    st = agent.status("job-orphan")
    assert st["state"] == "running" and st["supervisor_alive"] and st["processes"][0]["state"] == "running"
    assert os.getsid(st["supervisor_pid"]) not in (os.getsid(0), wrapper.pid)  # a session of its own
    sup = st["supervisor_pid"]
    assert Path(f"/proc/{sup}/fd/0").resolve() == Path("/dev/null")
    # the start call forked: named for ps/top, holding none of the caller's files (pipes, start lock)
    assert Path(f"/proc/{sup}/comm").read_text().strip() == node_base.SUPERVISOR_NAME
    held = {os.readlink(f"/proc/{sup}/fd/{fd}") for fd in os.listdir(f"/proc/{sup}/fd")}
    assert not any(h.startswith("pipe:") or h.endswith("start.lock") for h in held), held
    assert agent.run("stop", "--job", "job-orphan", "--grace", "1")[0] == 0


def test_success_and_version_under_python39(agent: AgentHarness, python39: str):
    code, version = agent.run("version", python=python39)
    assert code == 0 and version["python"].startswith("3.9") and version["version"] == node_base.AGENT_VERSION
    agent.python = python39
    code, _ = agent.start("job-39", [("--steps", "2"), ("--sleep", "0.2")])
    assert code == 0
    st = agent.wait("job-39", ["succeeded"])
    assert [p["exit_code"] for p in st["processes"]] == [0, 0] and st["root_cause"] is None
    assert st["processes"][0]["progress"]["global_step"] == 2


def test_unknown_job_and_bad_spec(agent: AgentHarness, tmp_path: Path):
    code, answer = agent.run("status", "--job", "nope")
    assert code == node_base.EXIT_NO_JOB and "no job nope" in answer["error"]
    (tmp_path / "bad.json").write_text('{"job_id": "x"}')
    code, answer = agent.run("start", "--spec", str(tmp_path / "bad.json"))
    assert code == node_base.EXIT_USAGE and "needs job_id and ranks" in answer["error"]


@pytest.mark.cluster
def test_processes_in_another_network_namespace_belong_to_another_node(agent: AgentHarness):
    """Simulated nodes share one /proc: the agent must leave another namespace's ranks alone."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) missing")
    other = subprocess.Popen(["unshare", "--net", sys.executable, "-c", "import time; time.sleep(60)"],
                             env=agent.env(**{node_base.ENV_JOB: "job-ns"}))  # fmt: skip
    try:
        assert agent.start("job-ns", [SLEEP])[0] == 0  # the same job, on "another node"
        code, free = agent.run("check-devices")
        assert other.pid not in [p["pid"] for p in free["orchestrate"]]
        code, stopped = agent.run("stop", "--job", "job-ns", "--grace", "1")
        assert code == 0 and stopped["none_left"] and str(other.pid) not in stopped["killed"]
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
