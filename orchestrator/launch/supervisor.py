"""The detached local monitor: watches a job without the user's terminal (``python -m`` this module).

``launch`` starts it right after the ranks started; the CLI then only renders ``status.json``. One
monitor per job (an exclusive lock on ``monitor.lock``); ``ensure_monitor`` starts a new one when the
job is not finished and none runs (the controller was killed): that is how ``status`` reattaches.

After a failed attempt it collects the logs (``collect.job.collect_after_failure``; the index goes into
the status), and while restarts are left (``--max-restarts``) it relaunches the job from its newest
checkpoint (``launch.restart``) and watches the new attempt.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import psutil

from orchestrator.jobs.events import append_event
from orchestrator.jobs.model import JobStatus
from orchestrator.jobs.state import JobDir


def monitor_alive(job: JobDir) -> bool:
    """True while a monitor holds the job's lock."""
    path = job.path / "monitor.lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def spawn_monitor(job: JobDir) -> int:
    """Start the monitor detached from this process (own session, no terminal); its pid."""
    log = os.open(job.path / "monitor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.launch.supervisor", job.job_id, str(job.path.parent)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
        )  # fmt: skip
    finally:
        os.close(log)
    return proc.pid


def ensure_monitor(job: JobDir, wait_s: float = 5.0) -> bool:
    """Start a monitor for an unfinished job that has none; True if one was started."""
    status = job.status()
    if (status is not None and status.state.is_terminal()) or job.stop_requested() or monitor_alive(job):
        return False
    spawn_monitor(job)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and not monitor_alive(job):
        time.sleep(0.05)
    return True


def stop_monitor(job: JobDir, timeout: float = 10.0) -> None:
    """Wait for the monitor to notice ``stop-requested`` and exit; kill it if it does not."""
    deadline = time.monotonic() + timeout
    while monitor_alive(job) and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = job.monitor_pid()
    if pid and monitor_alive(job):
        try:  # only the job's own monitor, never a process that reused its pid
            proc = psutil.Process(pid)
            if job.job_id in proc.cmdline():
                proc.kill()
        except psutil.Error:
            pass


def _collect(job: JobDir) -> None:
    """Collect the logs of the failed attempt and name the index in the status."""
    from orchestrator.collect.job import collect_after_failure

    result = collect_after_failure(job)
    last = job.status()
    if result is not None and last is not None:
        job.save_status(dataclasses.replace(last, logs_index=str(result.index_md)))


def watch_attempts(job: JobDir) -> Optional[JobStatus]:
    """Watch the job, collect logs after each failed attempt, relaunch while restarts are left."""
    from orchestrator.jobs.attempts import load_attempts, save_attempts
    from orchestrator.jobs.model import JobState
    from orchestrator.launch.monitor import Monitor
    from orchestrator.launch.restart import decide, mark_failed, relaunch

    while True:
        status = Monitor(job).run()
        if status is None:  # a user stop took over
            return None
        cause = str(status.root_cause) if status.root_cause else None
        failed = status.state in (JobState.FAILED, JobState.RESTARTING)
        outcome = "failed" if failed else status.state.value
        save_attempts(job, load_attempts(job).end(outcome, status.ended or time.time(), cause))
        if not failed:
            return status
        _collect(job)
        verdict = decide(load_attempts(job), status.state, job.stop_requested())
        append_event(job.path, "restart-decision", restart=verdict.restart, reason=verdict.reason)
        if not verdict.restart:
            if status.state == JobState.RESTARTING and not job.stop_requested():
                mark_failed(job, f"{status.message}; {verdict.reason}")
            return job.status()
        try:
            relaunch(job, "restart")
        except Exception as exc:  # the next attempt could not start: the job ends here
            mark_failed(job, f"restart failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            return job.status()


def main(argv: Optional[list[str]] = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    job = JobDir(args[0], Path(args[1]) if len(args) > 1 else None)
    lock = os.open(job.path / "monitor.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another monitor watches this job
    job.write("monitor.pid", f"{os.getpid()}\n")
    append_event(job.path, "monitor-started", pid=os.getpid())
    try:
        status = watch_attempts(job)
    except Exception as exc:  # the job keeps running; record why we stopped watching
        error = f"{type(exc).__name__}: {exc}"
        append_event(job.path, "monitor-error", error=error)
        last = job.status()
        if last is not None and not last.state.is_terminal():
            job.save_status(dataclasses.replace(last, message=f"monitor stopped: {error}"))
        raise
    append_event(job.path, "monitor-exited", state=status.state.value if status else "stop-requested")
    return 0


if __name__ == "__main__":
    sys.exit(main())
