"""``watch``: one job's events streamed to the controller, and its commands taken, on one channel
(stdlib, Python 3.9+; node side).

The controller-side watcher keeps one of these running per node and job, over one SSH channel. Out
(stdout, one JSON object a line, each with ``kind``):
- ``hello``: the job's status snapshot (as ``status`` answers it), then every journal entry past
  ``--after`` (``journal``: rank started/exited, progress, result, state) as it is written;
- ``heartbeat`` every ``--heartbeat`` seconds: the last seq sent and the job's state (``unknown`` once
  its supervisor died without finishing it);
- ``snapshot`` after a ``gap`` (entries dropped from the bounded journal before they were read);
- ``reply`` to a command: ``{"kind": "reply", "id": ID, "ok": true, "answer": {...}}`` or ``ok`` false
  with ``error`` and ``exit_code``.
In (stdin, one JSON object a line): ``{"id": ID, "op": "status"|"stop"|"tail", ...}``; each command
runs in its own thread (a stop's grace does not hold the stream). It waits in ``select`` on stdin
with a short timeout and reads the journal's new bytes: no interpreter start per poll. It ends at the
end of stdin (the controller went away), or when the job has been over for ``IDLE_EXIT_S``.
"""

from __future__ import annotations

import json
import os
import select
import threading
import time
from typing import Any, Callable, Dict, Optional

from orchestrator.agent.node.journal import JournalReader

Json = Dict[str, Any]
WAKE_S = 0.1  # how often new journal entries are looked for: bounds the added latency of an event
IDLE_EXIT_S = 600.0


class Channel:
    """stdout (line by line, one writer at a time) and stdin (complete lines)."""

    def __init__(self) -> None:
        self.lock, self.buf, self.closed = threading.Lock(), b"", False

    def send(self, data: Json) -> None:
        line = (json.dumps(data, sort_keys=True, default=str) + "\n").encode()
        with self.lock:
            view = memoryview(line)
            try:
                while view:
                    view = view[os.write(1, view) :]
            except OSError:  # the controller went away
                self.closed = True

    def lines(self, timeout: float) -> Optional[list]:
        """Complete command lines that arrived within ``timeout`` ([] if none); None at the end of stdin."""
        if not select.select([0], [], [], timeout)[0]:
            return []
        data = os.read(0, 65536)
        if not data:
            return None
        *complete, self.buf = (self.buf + data).split(b"\n")
        return [json.loads(c) for c in complete if c.strip()]


def _run(channel: Channel, handle: Callable[[Json], Json], request: Json) -> None:
    reply: Json = {"kind": "reply", "id": request.get("id")}
    try:
        reply.update(ok=True, answer=handle(request))
    except Exception as e:  # answered, never raised: the stream goes on
        extra = getattr(e, "extra", {})
        reply.update(extra, ok=False, error=str(e) or type(e).__name__, exit_code=getattr(e, "code", 1))
    channel.send(reply)


def serve(jdir: str, after: int, heartbeat_s: float, snapshot: Callable[[], Json], job_state: Callable[[], str],
          handle: Callable[[Json], Json]) -> Json:  # fmt: skip
    """Stream the job in ``jdir`` until stdin ends (see the module docstring); why it ended."""
    channel, reader, running = Channel(), JournalReader(jdir, after), []
    channel.send({"kind": "hello", "after": after, "snapshot": snapshot()})
    next_beat, over_since = 0.0, None
    while not channel.closed:
        now = time.time()
        beat = now >= next_beat
        for entry in reader.read(check_rotation=beat):
            channel.send(entry)
            if entry["kind"] == "gap":
                channel.send({"kind": "snapshot", "snapshot": snapshot()})
        if beat:
            state = job_state()
            channel.send({"kind": "heartbeat", "seq": reader.seq, "state": state, "t": round(now, 3)})
            next_beat = now + heartbeat_s
            over_since = (
                (over_since or now) if state in ("succeeded", "failed", "stopped", "unknown") else None
            )
            if over_since is not None and now - over_since > IDLE_EXIT_S:
                return {"ended": "idle"}
        try:
            requests = channel.lines(WAKE_S)
        except ValueError as e:
            channel.send({"kind": "reply", "id": None, "ok": False, "error": f"bad command line: {e}"})
            continue
        if requests is None:
            break
        for request in requests:
            running.append(threading.Thread(target=_run, args=(channel, handle, request), daemon=True))
            running[-1].start()
    reader.close()
    for thread in running:  # a stop under way finishes (and leaves nothing behind) before we exit
        thread.join(timeout=120)
    return {"ended": "closed"}
