"""The watch process of a job, a detached local process (its body: ``launch.watch_main``): starting it,
telling whether it runs, waiting for it to end.

``launch`` starts it right after the ranks started; the CLI then only renders ``status.json``. One
watch process per job (an exclusive lock on ``monitor.lock``; its pid in ``monitor.pid``, its output in
``monitor.log``); ``ensure_monitor`` starts a new one when the job is not finished and none runs (the
controller was killed): that is how ``status`` reattaches.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time

import psutil

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
            [sys.executable, "-m", "orchestrator.launch.watch_main", job.job_id, str(job.path.parent)],
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
