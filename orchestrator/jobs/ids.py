"""Job ids: ``<YYYYmmdd-HHMMSS>-<task>-<4 hex>``; sortable by start time, safe as a folder name."""

from __future__ import annotations

import re
import secrets
import time
from typing import Optional

_ID = re.compile(r"\d{8}-\d{6}-[a-z_]+-[0-9a-f]{4}\Z")


def new_job_id(task: str, now: Optional[float] = None, suffix: Optional[str] = None) -> str:
    """A fresh id for a ``task`` job started at ``now`` (UTC); ``suffix`` (4 hex) is random unless given."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    job = f"{stamp}-{task}-{suffix or secrets.token_hex(2)}"
    if not is_job_id(job):
        raise ValueError(f"cannot build a job id from task {task!r} and suffix {suffix!r}")
    return job


def is_job_id(text: str) -> bool:
    return bool(_ID.match(text))
