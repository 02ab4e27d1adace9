"""The agent's constants, its error, and the job files it keeps (stdlib, Python 3.9+; node side).

A job lives in ``<workdir>/jobs/<job_id>/`` (0700): ``spec.json``, ``state.json`` (0600, written
atomically by the detached supervisor), ``journal.jsonl``, ``supervisor.log``, the ``stop-requested``
marker. Every process the agent starts carries ORCHESTRATE_JOB_ID, _ROLE and _RANK in its environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from typing import Any, Dict, List, Optional

AGENT_VERSION = "5"
ENV_JOB, ENV_RANK, ENV_ROLE = "ORCHESTRATE_JOB_ID", "ORCHESTRATE_RANK", "ORCHESTRATE_ROLE"
# When set, scans only see processes carrying the same value (tests; several agents on one host).
ENV_SCOPE = "ORCHESTRATE_AGENT_SCOPE"
# A job's supervisor, the start call forked, shows this name (/proc/<pid>/comm) and works in the job's folder.
SUPERVISOR_NAME = "orch-supervisor"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_BUSY, EXIT_SPAWN, EXIT_SURVIVORS, EXIT_NO_JOB = range(7)
TERMINAL = ("succeeded", "failed", "stopped")
RELEASE_WAIT_S = 30.0  # how long to wait for npu-smi to stop listing a job's (or a dead) process
PROGRESS_S = 1.0  # how often the supervisor reads the new bytes of its processes' logs

Json = Dict[str, Any]


class AgentError(Exception):
    """A refusal or failure, answered as JSON (``error`` plus ``extra``) with exit code ``code``."""

    def __init__(self, code: int, message: str, **extra: Any):
        super().__init__(message)
        self.code, self.extra = code, extra


def write_atomic(path: str, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` atomically (temp file, fsync, rename; parents made) with exactly ``mode``."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)  # the umask does not narrow what was asked for
    os.replace(tmp, path)


def write_json(path: str, data: Json) -> None:
    """Write ``data`` atomically, mode 0600."""
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode(), 0o600)


def read_json(path: str) -> Optional[Json]:
    with contextlib.suppress(OSError, ValueError), open(path) as f:
        return json.load(f)
    return None


def tail_text(path: str, max_bytes: int = 256 * 1024) -> str:
    """The last ``max_bytes`` of a file, decoded leniently ('' if missing)."""
    with contextlib.suppress(OSError), open(path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
        return f.read().decode("utf-8", "replace")
    return ""


def job_dir(workdir: str, job: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", job):
        raise AgentError(EXIT_USAGE, f"bad job id {job!r}: use letters, digits, '.', '_' and '-'")
    return os.path.join(workdir, "jobs", job)


def all_states(workdir: str) -> List[Json]:
    """The state of every job recorded under ``workdir``, by job id."""
    root = os.path.join(workdir, "jobs")
    jobs = sorted(os.listdir(root)) if os.path.isdir(root) else []
    return [st for st in (read_json(os.path.join(root, j, "state.json")) for j in jobs) if st]


def load_state(workdir: str, job: str) -> Json:
    st = read_json(os.path.join(job_dir(workdir, job), "state.json"))
    if st is None:
        raise AgentError(EXIT_NO_JOB, f"no job {job} on this node (under {workdir})")
    return st
