"""Reattaching to a job from any terminal: make sure a monitor watches it, read or follow its snapshots."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Optional

from rich.console import Console

from orchestrator.errors import JobFailed
from orchestrator.jobs.model import JobState, JobStatus
from orchestrator.jobs.state import JobDir
from orchestrator.launch.live import follow
from orchestrator.launch.watch_process import ensure_monitor, monitor_alive


def current(job: JobDir) -> Optional[JobStatus]:
    status = job.status()
    return replace(status, monitor_alive=monitor_alive(job)) if status else None


def reattach(job: JobDir, fresh_s: float = 15.0) -> Optional[JobStatus]:
    """The job's status; if nobody watched it (controller killed), start a monitor and wait for its view."""
    since = time.time()
    if ensure_monitor(job):
        deadline = time.monotonic() + fresh_s
        while time.monotonic() < deadline:
            status = job.status()
            if status is None or status.time > since or status.state.is_terminal():
                break
            time.sleep(0.2)
    return current(job)


def watch(job: JobDir, console: Console) -> Optional[JobStatus]:
    """Follow the live table until the job ends (the monitor keeps going if this is interrupted)."""
    reattach(job, fresh_s=0.0)
    return follow(lambda: current(job), console)


def settled(job: JobDir, status: Optional[JobStatus], timeout: float = 180.0) -> Optional[JobStatus]:
    """The job's status once its monitor is done (after a failure it still collects the logs)."""
    deadline = time.monotonic() + timeout
    while monitor_alive(job) and time.monotonic() < deadline:
        time.sleep(0.2)
    return current(job) or status


def outcome(status: Optional[JobStatus]) -> None:
    """Nothing for a job that succeeded; JobFailed (exit 6) naming the root cause otherwise."""
    if status is None or status.state == JobState.SUCCEEDED:
        return
    logs = f"\n  collected logs: {status.logs_index}" if status.logs_index else ""
    if status.state == JobState.FAILED:
        cause = status.root_cause
        rank = f" --rank {cause.rank}" if cause and cause.rank is not None else ""
        raise JobFailed(f"job {status.job_id} failed: {cause or status.message}"
                        f"\n  logs: orchestrate logs {status.job_id}{rank}{logs}")  # fmt: skip
    raise JobFailed(f"job {status.job_id} ended {status.state.value}: {status.message}{logs}")
