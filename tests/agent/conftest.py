"""Fixtures for the node agent tests: a harness that runs the agent as a subprocess in a private
scope (ORCHESTRATE_AGENT_SCOPE), writes job specs for dummy ranks, and kills every process of the
scope afterwards, even when the test failed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from orchestrator.agent.bundle import write_local
from orchestrator.agent.node import base as node_base

# The agent as a node runs it: this checkout's zipapp (content-hashed name, so a shared folder is fine).
AGENT = write_local(Path(tempfile.gettempdir()) / "orchestrate-test-agent")
DUMMY = Path(__file__).with_name("dummy_rank.py")


def scope_pids(scope: str) -> List[int]:
    """Live processes whose environment carries ``scope`` (read independently of the agent)."""
    pids = []
    for p in map(int, filter(str.isdigit, os.listdir("/proc"))):
        if _has_env(p, f"{node_base.ENV_SCOPE}={scope}") and _state(p) not in ("Z", ""):
            pids.append(p)
    return pids


def job_pids(job: str) -> List[int]:
    """Live processes of ``job``: those marked with its id, and its supervisor (named SUPERVISOR_NAME,
    working in the job's folder: it is the start call forked, so its /proc environ is the caller's)."""
    return [
        p
        for p in map(int, filter(str.isdigit, os.listdir("/proc")))
        if (_has_env(p, f"{node_base.ENV_JOB}={job}") or _is_supervisor(p, job))
        and _state(p) not in ("Z", "")
    ]


def _is_supervisor(pid: int, job: str) -> bool:
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        return comm == node_base.SUPERVISOR_NAME and os.readlink(f"/proc/{pid}/cwd").endswith(f"/jobs/{job}")
    except OSError:
        return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _has_env(pid: int, kv: str) -> bool:
    try:
        return kv.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


@dataclass
class AgentHarness:
    root: Path
    scope: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    python: str = sys.executable

    @property
    def workdir(self) -> Path:
        return self.root / "wd"

    def env(self, **extra: str) -> Dict[str, str]:
        return dict(os.environ, **{node_base.ENV_SCOPE: self.scope}, **extra)

    def run(
        self, *args: str, python: Optional[str] = None, env: Optional[Dict[str, str]] = None
    ) -> Tuple[int, Dict[str, Any]]:
        cmd = [python or self.python, str(AGENT), "--workdir", str(self.workdir), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env or self.env())
        assert proc.stdout.strip(), f"no answer from {cmd}: {proc.stderr}"
        return proc.returncode, json.loads(proc.stdout)

    def rank(self, *dummy_args: str, rank: int = 0, log: str = "") -> Dict[str, Any]:
        return {
            "rank": rank,
            "argv": [sys.executable, str(DUMMY), *dummy_args],
            "env": {"RANK_ID": str(rank)},
            "cwd": str(self.root),
            "log": log or str(self.root / "logs" / f"rank_{rank}.log"),
        }

    def spec(self, job: str, ranks: Sequence[Sequence[str]], **extra: Any) -> str:
        """Write a spec whose rank i runs dummy_rank.py with ``ranks[i]`` as arguments."""
        spec = {
            "job_id": job,
            "agent_version": node_base.AGENT_VERSION,
            "node": "local",
            "work_dir": str(self.workdir),
            "grace_s": 1.0,
            "heartbeat_s": 0.2,
            "ranks": [self.rank(*a, rank=i) for i, a in enumerate(ranks)],
        }
        spec.update(extra)
        path = self.root / f"{job}.spec.json"
        path.write_text(json.dumps(spec))
        return str(path)

    def start(
        self, job: str, ranks: Sequence[Sequence[str]], *flags: str, **extra: Any
    ) -> Tuple[int, Dict[str, Any]]:
        return self.run("start", "--spec", self.spec(job, ranks, **extra), *flags)

    def status(self, job: str) -> Dict[str, Any]:
        code, answer = self.run("status", "--job", job, "--lines", "5", "--cpu-sample", "0.05")
        assert code == 0, answer
        return answer

    def wait(self, job: str, states: Sequence[str], timeout: float = 15.0) -> Dict[str, Any]:
        deadline = time.time() + timeout
        while True:
            st = self.status(job)
            if st["state"] in states or time.time() > deadline:
                assert st["state"] in states, st
                return st
            time.sleep(0.1)

    def kill_all(self) -> None:
        for _ in range(50):
            pids = scope_pids(self.scope)
            if not pids:
                return
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)


@pytest.fixture
def agent(tmp_path: Path):
    harness = AgentHarness(tmp_path)
    try:
        yield harness
    finally:
        harness.kill_all()


def wait_for_file(path: Path) -> None:
    """Wait (up to 20 s) until ``path`` exists: a rank signals it is ready by writing it."""
    for _ in range(400):
        if path.exists():
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def job_pids_after_exit(job: str, timeout: float = 10.0) -> List[int]:
    """``job_pids(job)`` once they are gone, or what is left after ``timeout``: the supervisor records a
    job's end before it exits itself, so a check right after the state changed can still see it."""
    deadline = time.monotonic() + timeout
    while (left := job_pids(job)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left
