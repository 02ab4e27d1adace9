"""One control lock per job: a stop and an automatic relaunch never run at the same time.

``control_lock(job)`` holds an exclusive ``flock`` on ``<job>/control.lock`` for its block. The watch
process takes it to decide on and start a relaunch; ``orchestrate stop`` takes it before stopping the
nodes, so a stop waits for a relaunch under way to finish starting (and then stops that attempt too),
and a relaunch that comes second sees ``stop-requested`` and does not start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Iterator

from orchestrator.jobs.state import JobDir


@contextlib.contextmanager
def control_lock(job: JobDir, timeout: float = 600.0) -> Iterator[None]:
    """Hold the job's control lock (TimeoutError after ``timeout`` s of waiting)."""
    fd = os.open(job.path / "control.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"job {job.job_id}: its control lock was held for {timeout:g}s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock
