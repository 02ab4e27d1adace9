"""What Slurm says of a job: ``scontrol show job -o`` read into a typed record, and why it ended."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from orchestrator.slurm.hostlist import expand

PENDING, RUNNING = "PENDING", "RUNNING"
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
         "BOOT_FAIL", "DEADLINE")  # fmt: skip
# What each end state means for our job, as `orchestrate status` says it.
CAUSES = {
    "TIMEOUT": "Slurm ended the allocation at its time limit",
    "NODE_FAIL": "Slurm reported a node failure",
    "CANCELLED": "the allocation was cancelled (scancel)",
    "PREEMPTED": "Slurm preempted the allocation",
    "OUT_OF_MEMORY": "Slurm killed the job for memory",
    "BOOT_FAIL": "Slurm could not boot the allocated nodes",
    "DEADLINE": "Slurm ended the allocation at its deadline",
    "FAILED": "the allocation's batch script failed",
}


@dataclass(frozen=True)
class SlurmJob:
    """One Slurm job: id, state (+ reason), its nodes, time limit and exit code:signal."""

    job_id: str
    state: str
    reason: str
    nodes: tuple[str, ...]
    time_limit: str
    exit_code: int = 0
    signal: int = 0
    name: str = ""

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def cause(self) -> Optional[str]:
        """Why Slurm ended it, when it ended for a reason of Slurm's (None while it runs or completed)."""
        return CAUSES.get(self.state)


def parse_show_job(text: str) -> SlurmJob:
    """Read one ``scontrol show job -o`` line (``Key=Value`` pairs; values may hold spaces only at
    the end, in fields we do not read)."""
    fields = dict(m.groups() for m in re.finditer(r"(\S+?)=(\S*)", text))
    if "JobId" not in fields:
        raise ValueError(f"not a `scontrol show job` answer: {text[:200]!r}")
    state = fields.get("JobState", "UNKNOWN").split("+")[0]
    code, _, sig = fields.get("ExitCode", "0:0").partition(":")
    return SlurmJob(
        job_id=fields["JobId"],
        state=state,
        reason=fields.get("Reason", "None"),
        nodes=tuple(expand(fields.get("NodeList", ""))),
        time_limit=fields.get("TimeLimit", ""),
        exit_code=int(code or 0),
        signal=int(sig or 0),
        name=fields.get("JobName", ""),
    )
