"""events.jsonl: the append-only history of a job (one JSON object per line, with a UTC time)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def append_event(folder: Path, kind: str, **data: Any) -> dict[str, Any]:
    """Append ``{"time", "kind", **data}`` to ``folder``/events.jsonl (created 0600) and return it."""
    event = {"time": round(time.time(), 3), "kind": kind, **data}
    fd = os.open(folder / "events.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(event, sort_keys=True, default=str) + "\n")
    return event


def read_events(folder: Path) -> list[dict[str, Any]]:
    """Every event of the job, oldest first (a torn last line is skipped)."""
    path = folder / "events.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
