"""The allocation that holds a job's nodes: submit it (or adopt one), wait until it runs, release it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

from orchestrator.errors import OrchestrateError
from orchestrator.slurm import commands
from orchestrator.slurm.jobinfo import PENDING, RUNNING, SlurmJob, parse_show_job
from orchestrator.slurm.settings import SlurmSettings
from orchestrator.transport.base import Transport


class SlurmError(OrchestrateError, RuntimeError):
    """Slurm refused or ended what we asked (the message carries Slurm's own words)."""


@dataclass(frozen=True)
class Allocation:
    """A running Slurm job holding ``nodes`` (hostnames as Slurm names them); ``owned``: we submitted it
    (so ``release`` cancels it), else it is the user's allocation and is left alone."""

    slurm_job: str
    nodes: tuple[str, ...]
    owned: bool


def show(login: Transport, slurm_job: str) -> Optional[SlurmJob]:
    """Slurm's record of the job, None once Slurm has forgotten it (MinJobAge)."""
    r = login.run(commands.show_job(slurm_job), check=False, timeout=30)
    if r.exit_code != 0:
        if "Invalid job id" in r.stderr:
            return None
        raise SlurmError(
            f"scontrol show job {slurm_job} on {login.host}: {r.stderr.strip() or r.stdout.strip()}"
        )
    return parse_show_job(r.stdout.strip().splitlines()[0])


def submit(login: Transport, script: str, script_path: str) -> str:
    """Write the batch script on the login host and sbatch it; returns the Slurm job id."""
    login.put_bytes(script.encode(), script_path, mode=0o700)
    r = login.run(commands.sbatch(script_path), check=False, timeout=60)
    if r.exit_code != 0:
        raise SlurmError(f"sbatch refused the allocation: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout.strip().split(";")[0]


def wait_running(login: Transport, slurm_job: str, timeout: float,
                 on_wait: Callable[[SlurmJob], None] = lambda j: None) -> SlurmJob:  # fmt: skip
    """Poll until the job runs; raise SlurmError when it ended or is still pending at ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        job = show(login, slurm_job)
        if job is None:
            raise SlurmError(f"Slurm job {slurm_job} is gone (ended before it ran)")
        if job.state == RUNNING and job.nodes:
            return job
        if job.ended:
            raise SlurmError(f"Slurm job {slurm_job} ended before it ran: {job.state} ({job.reason})")
        if time.monotonic() > deadline:
            state = f"{job.state} ({job.reason})" if job.state == PENDING else job.state
            raise SlurmError(f"Slurm job {slurm_job} still {state} after {timeout:.0f} s; it was cancelled")
        on_wait(job)
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def allocate(login: Transport, job_id: str, nodes: int, devices: int, s: SlurmSettings, script_dir: str,
             timeout: float = 600.0) -> Allocation:  # fmt: skip
    """Hold ``nodes`` nodes for orchestrate job ``job_id``: adopt ``s.job_id`` when set (checking it has
    enough nodes), else submit the holding script and wait for it to run (cancelled if it does not)."""
    if s.job_id:
        job = show(login, s.job_id)
        if job is None or job.state != RUNNING:
            state = job.state if job else "unknown to Slurm"
            raise SlurmError(f"slurm.job_id {s.job_id}: the allocation is {state}, not RUNNING")
        if len(job.nodes) < nodes:
            raise SlurmError(
                f"slurm.job_id {s.job_id} holds {len(job.nodes)} node(s); the plan needs {nodes}"
            )
        return Allocation(s.job_id, job.nodes[:nodes], owned=False)
    script = commands.allocation_script(job_id, nodes, devices, s, f"{script_dir}/slurm-%j.out")
    slurm_job = submit(login, script, f"{script_dir}/allocation.sbatch")
    try:
        job = wait_running(login, slurm_job, timeout)
    except BaseException:
        login.run(commands.scancel(slurm_job), check=False, timeout=30)
        raise
    return Allocation(slurm_job, job.nodes, owned=True)


def release(login: Transport, alloc: Allocation) -> None:
    """Cancel the allocation if we submitted it (an adopted one is the user's to end)."""
    if alloc.owned:
        login.run(commands.scancel(alloc.slurm_job), check=False, timeout=30)


def wait_ended(login: Transport, slurm_job: str, timeout: float) -> Optional[SlurmJob]:
    """Poll until Slurm reports the job ended (or forgot it: None); raise SlurmError at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        job = show(login, slurm_job)
        if job is None or job.ended:
            return job
        if time.monotonic() > deadline:
            raise SlurmError(f"Slurm job {slurm_job} still {job.state} after {timeout:.0f} s")
        time.sleep(0.3)
