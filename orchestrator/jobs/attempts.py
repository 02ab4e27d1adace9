"""The attempts of one job (``attempts.json`` in its state folder): the first launch, each automatic
restart (``--max-restarts``) and each resume by hand (``launch --resume``), with the step each resumed from.

A job keeps its id over its attempts; every attempt runs the same plan bound to the same output folder,
so a resumed attempt finds the checkpoints of the ones before it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, replace
from typing import Optional

from orchestrator.jobs.state import JobDir

FILE = "attempts.json"


@dataclass(frozen=True)
class Attempt:
    """One run of the job's processes."""

    number: int  # 1, 2, ...
    how: str  # launch | restart | resume
    started: float
    resumed_from: Optional[int] = None  # global step of the checkpoint loaded; None: from scratch
    checkpoint: Optional[str] = None  # per node: <output_dir>/<this>/rank_<R>/ (the one file resumed from)
    ended: Optional[float] = None
    outcome: Optional[str] = None  # succeeded | failed | stopped
    cause: Optional[str] = None  # the root cause when it failed
    note: str = ""  # e.g. why it started from scratch


@dataclass(frozen=True)
class Attempts:
    """Every attempt so far and how many the job may make in all."""

    max_attempts: int
    attempts: tuple[Attempt, ...] = ()

    @property
    def current(self) -> Optional[Attempt]:
        return self.attempts[-1] if self.attempts else None

    @property
    def left(self) -> int:
        """Automatic restarts still allowed."""
        return max(0, self.max_attempts - len(self.attempts))

    def begin(self, attempt: Attempt) -> Attempts:
        return replace(self, attempts=self.attempts + (attempt,))

    def end(self, outcome: str, ended: float, cause: Optional[str] = None) -> Attempts:
        """The current attempt closed with ``outcome`` (a no-op once it is closed)."""
        cur = self.current
        if cur is None or cur.outcome is not None:
            return self
        return replace(
            self, attempts=self.attempts[:-1] + (replace(cur, outcome=outcome, ended=ended, cause=cause),)
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Attempts:
        d = json.loads(text)
        return cls(d["max_attempts"], tuple(Attempt(**a) for a in d["attempts"]))


def load_attempts(job: JobDir) -> Attempts:
    """The job's attempts (a job from before attempts were recorded: one launch, no restarts)."""
    text = job.read(FILE)
    if text is None:
        created = job.record().created if job.exists() else 0.0
        return Attempts(1, (Attempt(1, "launch", created),))
    return Attempts.from_json(text)


def save_attempts(job: JobDir, attempts: Attempts) -> None:
    job.write(FILE, attempts.to_json())
