"""The supervisor: the detached daemon that spawns one job's processes on this node, reaps them, stops
all on the first failure (fail-fast) and keeps ``state.json`` and the journal (node side)."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from typing import Dict, Optional

from orchestrator.agent.node.base import (
    AGENT_VERSION,
    ENV_JOB,
    ENV_RANK,
    ENV_ROLE,
    ENV_SCOPE,
    EXIT_SPAWN,
    PROGRESS_S,
    SUPERVISOR_NAME,
    AgentError,
    Json,
    job_dir,
    read_json,
    tail_text,
    write_json,
)
from orchestrator.agent.node.journal import Journal
from orchestrator.agent.node.procs import proc_stat, scan_marked, terminate
from orchestrator.agent.node.progress import LogFollower


class Supervisor:
    """Spawns the job's processes, reaps them, stops all on the first failure, keeps ``state.json``."""

    def __init__(self, workdir: str, job: str):
        self.dir = job_dir(workdir, job)
        self.spec: Json = read_json(os.path.join(self.dir, "spec.json")) or {}
        self.marker = os.path.join(self.dir, "stop-requested")
        self.children: Dict[str, subprocess.Popen] = {}
        self.followers: Dict[str, LogFollower] = {}
        self.stop_requested = self.stopping = self.terminated = False
        self.last_write, self.grace = 0.0, float(self.spec.get("grace_s", 10))
        self.journal, self.last_progress = Journal(self.dir), 0.0
        self.procs = [dict(p, role="rank") for p in self.spec.get("ranks", [])]
        if self.spec.get("scheduler"):
            self.procs.insert(0, dict(self.spec["scheduler"], role="scheduler", rank=None))
        self.state: Json = {
            "job_id": job, "node": self.spec.get("node"), "agent_version": AGENT_VERSION, "state": "starting",
            "supervisor_pid": os.getpid(), "supervisor_start": proc_stat(os.getpid())["start"],
            "started": time.time(), "ended": None, "heartbeat": time.time(), "root_cause": None,
            "stopping": None, "end_order": [], "leftovers": {}, "device_map": self.spec.get("device_map"),
            "processes": [
                {"name": "scheduler" if p["role"] == "scheduler" else f"rank-{p['rank']}", "rank": p["rank"],
                 "role": p["role"], "argv": p["argv"], "log": p["log"], "pid": None, "pgid": None,
                 "start_ticks": None, "started": None, "ended": None, "returncode": None, "exit_code": None,
                 "signal": None, "killed_by_agent": False, "spawn_error": None, "end_seq": None}
                for p in self.procs
            ],
        }  # fmt: skip

    def save(self) -> None:
        self.state["heartbeat"] = self.last_write = time.time()
        write_json(os.path.join(self.dir, "state.json"), self.state)

    def journal_state(self) -> None:
        keys = ("state", "stopping", "root_cause", "ended")
        self.journal.append("state", **{k: self.state[k] for k in keys})

    def journal_exit(self, rec: Json) -> None:
        keys = ("name", "pid", "exit_code", "signal", "returncode", "killed_by_agent", "ended", "end_seq",
                "spawn_error")  # fmt: skip
        self.journal.append("rank-exited", **{k: rec[k] for k in keys})

    def follow_logs(self) -> None:
        """Journal each process's new training progress and eval result, read from its log's new bytes."""
        self.last_progress = time.time()
        for rec in self.state["processes"]:
            follower = self.followers.setdefault(
                rec["name"], LogFollower(rec["log"], self.spec.get("seq_length"))
            )
            progress, result = follower.poll()
            if progress is not None:
                self.journal.append("progress", name=rec["name"], progress=progress)
            if result is not None:
                self.journal.append("result", name=rec["name"], result=result)

    def spawn(self, rec: Json, p: Json) -> None:
        env = dict(os.environ) if self.spec.get("inherit_env", True) else {}
        env.update({k: str(v) for k, v in (p.get("env") or {}).items()})
        rank = "" if p["rank"] is None else str(p["rank"])
        env.update({ENV_JOB: self.state["job_id"], ENV_ROLE: p["role"], ENV_RANK: rank})
        env.update({ENV_SCOPE: os.environ[ENV_SCOPE]} if ENV_SCOPE in os.environ else {})
        try:
            os.makedirs(os.path.dirname(os.path.abspath(p["log"])), exist_ok=True)
            with open(p["log"], "ab") as log:
                proc = subprocess.Popen(p["argv"], env=env, cwd=p.get("cwd") or None, stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        except (OSError, ValueError, TypeError) as e:
            rec.update(spawn_error=f"{type(e).__name__}: {e}", ended=time.time())
            self.journal_exit(rec)
            return
        self.children[rec["name"]] = proc
        rec.update(pid=proc.pid, pgid=proc.pid, started=time.time(), start_ticks=proc_stat(proc.pid)["start"])
        self.journal.append("rank-started", name=rec["name"], pid=proc.pid, started=rec["started"])

    def reap(self) -> None:
        """Record processes that ended; the first unexpected failure is the root cause (fail-fast)."""
        for rec in self.state["processes"]:
            proc = self.children.get(rec["name"])
            rc = proc.poll() if proc and rec["ended"] is None else None
            if rc is None:
                continue
            if rc != 0 and (self.stop_requested or os.path.exists(self.marker)):
                self.request_stop("stop requested")  # `stop` signalled it before we saw the request
            self.state["end_order"].append(rec["name"])
            sig = next((s.name for s in signal.Signals if s.value == -rc), f"SIG{-rc}") if rc < 0 else None
            code = rc if rc >= 0 else 128 - rc  # shell style: 143 for SIGTERM
            seq = len(self.state["end_order"])
            rec.update(ended=time.time(), returncode=rc, exit_code=code, signal=sig, end_seq=seq)
            self.journal_exit(rec)
            if rc != 0 and not rec["killed_by_agent"] and self.state["root_cause"] is None:
                self.state["root_cause"] = self.cause(rec)
                if self.spec.get("fail_fast", True):
                    self.request_stop(f"fail-fast: {rec['name']} exited {rec['exit_code']}")
            self.save()

    def cause(self, rec: Json) -> Json:
        keys = ("name", "rank", "role", "pid", "exit_code", "signal", "spawn_error", "ended", "log")
        tail = tail_text(rec["log"], 64 * 1024).splitlines()[-20:]
        return dict({k: rec[k] for k in keys}, node=self.state["node"], log_tail=tail)

    def request_stop(self, reason: str) -> None:
        """Mark every running process as stopped by us; the main loop then terminates them."""
        if self.stopping:
            return
        self.stopping = True
        self.state["stopping"] = {"reason": reason, "time": time.time()}
        if reason == "stop requested":
            self.grace = float((read_json(self.marker) or {}).get("grace", self.grace))
        for rec in self.state["processes"]:
            if rec["pid"] is not None and rec["ended"] is None:
                rec["killed_by_agent"] = True
        self.save()
        self.journal_state()

    def run(self, notify_fd: Optional[int]) -> Json:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop_requested", True))
        for sig in (signal.SIGHUP, signal.SIGINT):  # handlers, not SIG_IGN, so children get the defaults
            signal.signal(sig, lambda *_: None)
        for rec, p in zip(self.state["processes"], self.procs):
            self.spawn(rec, p)
        self.state["state"] = "running"
        self.journal_state()
        failed = [r for r in self.state["processes"] if r["spawn_error"]]
        if failed:
            self.state["root_cause"] = self.cause(failed[0])
            self.request_stop(f"spawn failed: {failed[0]['name']}")
        self.save()
        keys = ("name", "rank", "role", "pid", "pgid", "log", "spawn_error")
        procs = [{k: r[k] for k in keys} for r in self.state["processes"]]
        with contextlib.suppress(OSError, TypeError):  # no `start` waiting, or it died with its SSH session
            os.write(notify_fd, json.dumps({"supervisor_pid": os.getpid(), "processes": procs}).encode())
            os.close(notify_fd)
        while any(r["ended"] is None for r in self.state["processes"]):
            if self.stop_requested or os.path.exists(self.marker):
                self.request_stop("stop requested")
            self.reap()
            if self.stopping and not self.terminated:
                self.terminated = True
                running = {r["pgid"] for r in self.state["processes"] if r["pid"] and r["ended"] is None}
                terminate(running, set(), self.grace, reap=self.reap)
            if time.time() - self.last_write >= float(self.spec.get("heartbeat_s", 1.0)):
                self.save()
            if time.time() - self.last_progress >= PROGRESS_S:
                self.follow_logs()
            time.sleep(0.1)
        self.follow_logs()  # the last lines the processes wrote
        left = scan_marked(self.state["job_id"])
        if left:  # grandchildren that left their group, or daemons a rank forgot
            groups = {p["pgid"] for p in left if p["pgid"] == p["pid"]}
            self.state["leftovers"] = terminate(groups, {p["pid"] for p in left}, 2.0)
        stopped = self.stop_requested or os.path.exists(self.marker)
        codes = [r["exit_code"] for r in self.state["processes"]]
        bad = self.state["root_cause"] or (not stopped and any(codes))
        self.state["state"] = "failed" if bad else "stopped" if stopped else "succeeded"
        self.state["ended"] = time.time()
        self.save()
        self.journal_state()
        self.journal.close()
        return {"job": self.state["job_id"], "state": self.state["state"]}


def _become_supervisor(workdir: str, job: str, jdir: str, w: int, foreground: bool) -> None:
    """The forked child's part of :func:`daemonize`: detach, then run the supervisor here; never returns."""
    code = 127
    try:
        if not foreground:  # a new session, then fork again so the daemon can never regain a terminal
            os.setsid()
            if os.fork() > 0:
                os._exit(0)
        os.chdir(jdir)  # the umask stays the caller's: ranks write checkpoints with it
        out = os.open(os.path.join(jdir, "supervisor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        for fd, target in ((os.open(os.devnull, os.O_RDONLY), 0), (out, 1), (out, 2)):
            os.dup2(fd, target)
        gc.freeze()  # objects of the caller (their fds are closed next) are never finalized here
        os.closerange(3, w)  # the SSH session's pipes and the start lock are the caller's, not ours
        os.closerange(w + 1, 65536)
        os.environ.update({ENV_JOB: job, ENV_ROLE: "supervisor", ENV_RANK: ""})  # the ranks inherit these
        with contextlib.suppress(OSError):  # what ps -e, top and pgrep show: not the caller's verb
            with open("/proc/self/comm", "w") as comm:
                comm.write(SUPERVISOR_NAME)
        Supervisor(workdir, job).run(w)
        code = 0
    except BaseException:  # noqa: BLE001 - whatever it was, it goes to supervisor.log, not the caller
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def daemonize(workdir: str, job: str, jdir: str, timeout: float = 60.0, foreground: bool = False) -> Json:
    """Start the supervisor detached (fork, setsid, fork); its answer once all are spawned.

    The supervisor is this agent call forked, not a new interpreter: a start costs a fork instead of a
    Python start and the agent's imports (~35 ms a node). ``foreground``: the supervisor stays this
    process's child (``supervisor_child`` in the answer), for a scheduler that tracks a job step's
    processes (Slurm): the caller then waits for it."""
    r, w = os.pipe()
    for stream in (sys.stdout, sys.stderr):  # nothing buffered here is written twice
        stream.flush()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _become_supervisor(workdir, job, jdir, w, foreground)
    os.close(w)
    if not foreground:
        os.waitpid(pid, 0)
    chunks, deadline = [b""], time.time() + timeout
    while chunks[-1] is not None and select.select([r], [], [], max(0.0, deadline - time.time()))[0]:
        chunks.append(os.read(r, 65536) or None)
    os.close(r)
    try:
        return dict(
            json.loads(b"".join(c for c in chunks if c)), **({"supervisor_child": pid} if foreground else {})
        )
    except ValueError:
        log = tail_text(os.path.join(jdir, "supervisor.log"), 4096)
        raise AgentError(EXIT_SPAWN, "the supervisor did not report back", supervisor_log=log) from None
