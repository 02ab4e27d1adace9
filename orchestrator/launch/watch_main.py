"""The body of a job's watch process (``python -m orchestrator.launch.watch_main JOB [ROOT]``).

It watches the job's attempt (``launch.watcher``); after a failed attempt it collects the logs
(``collect.job.collect_after_failure``; the index goes into the status), and while restarts are left
(``--max-restarts``) it relaunches the job from its newest checkpoint (``launch.restart``), under the
job's control lock (``jobs.lock``) so that a user's stop and the relaunch never interleave.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import os
import sys
import time
from pathlib import Path
from typing import Optional

from orchestrator.jobs.attempts import load_attempts, save_attempts
from orchestrator.jobs.events import append_event
from orchestrator.jobs.lock import control_lock
from orchestrator.jobs.model import JobState, JobStatus, RootCause
from orchestrator.jobs.state import JobDir
from orchestrator.launch.restart import decide, mark_failed, relaunch
from orchestrator.launch.watcher import Watcher
from orchestrator.slurm.backend import allocation_ended


def _collect(job: JobDir) -> None:
    """Collect the logs of the failed attempt and name the index in the status."""
    from orchestrator.collect.job import collect_after_failure

    result = collect_after_failure(job)
    last = job.status()
    if result is not None and last is not None:
        job.save_status(dataclasses.replace(last, logs_index=str(result.index_md)))


def _slurm_cause(job: JobDir, status: JobStatus) -> JobStatus:
    """A failed attempt whose Slurm allocation Slurm ended (time limit, node failure, scancel): that is
    the root cause, said in Slurm's words; the rank or node the watcher saw go first stays in the
    message. Given to the watcher, which records the failure only once this has restated it."""
    from orchestrator.slurm.backend import slurm_job

    if status.state not in (JobState.FAILED, JobState.RESTARTING):
        return status
    try:
        sj = slurm_job(job.record().nodes)
    except Exception as exc:  # Slurm unreachable: keep what the watcher saw
        append_event(job.path, "slurm-state-unknown", error=str(exc))
        return status
    if sj is None or sj.cause is None:
        return status
    seen = f" (first seen: {status.root_cause})" if status.root_cause else ""
    cause = RootCause(host=",".join(sj.nodes) or "slurm", what="slurm", rank=None, exit_code=None,
                      reason=f"{sj.cause}: Slurm job {sj.job_id} {sj.state}{seen}", time=time.time())  # fmt: skip
    status = dataclasses.replace(status, state=JobState.FAILED, root_cause=cause, message=cause.reason)
    append_event(job.path, "slurm-ended", slurm_job=sj.job_id, state=sj.state, reason=sj.reason)
    return status


def _release_allocation(job: JobDir) -> None:
    """The job is over: end the Slurm allocation we submitted for it (an adopted one stays)."""
    from orchestrator.slurm.backend import release

    try:
        release(job.path, job.record().nodes)
    except Exception as exc:
        append_event(job.path, "slurm-release-failed", error=str(exc))


def watch_attempts(job: JobDir) -> Optional[JobStatus]:
    """Watch the job, collect logs after each failed attempt, relaunch while restarts are left."""
    while True:
        status = Watcher(job, settle=functools.partial(_slurm_cause, job)).run()
        if status is None:  # a user stop took over
            return None
        cause = str(status.root_cause) if status.root_cause else None
        failed = status.state in (JobState.FAILED, JobState.RESTARTING)
        outcome = "failed" if failed else status.state.value
        save_attempts(job, load_attempts(job).end(outcome, status.ended or time.time(), cause))
        if not failed:
            return status
        _collect(job)
        with control_lock(job):  # a stop waits until this attempt started, or this sees its request
            verdict = decide(load_attempts(job), status.state, job.stop_requested())
            if verdict.restart and allocation_ended(job.record().nodes):
                verdict = dataclasses.replace(verdict, restart=False, reason="the Slurm allocation has ended")
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
        if status is not None and status.state.is_terminal():
            _release_allocation(job)
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
