"""``stage``: a job's small files written on this node from one bundle read on stdin (node side).

The controller sends, in one round trip, everything small a job needs here (generated YAML, rank
table, env files, ``commands.sh``, the code-folder note, the job spec) as one JSON object::

    {"files": [[path, mode, text], ...], "rotate": [log, ...], "next_attempt": job folder or null,
     "check": [path, ...], "inputs": [scan request, ...], "start": {"spec": path, "force": bool} or null}

Each file is written atomically (temporary name, fsync, rename; parents made), in the given order (the
spec last). ``rotate``: earlier logs moved aside (``<log>.<mtime>``) for a fresh job; ``next_attempt``:
the agent's record of the attempt before moved aside (``<job>.attempt-<n>``) so the job id starts again.
The answer says which ``check`` paths exist (the code folder's ``.complete`` marker), so the controller
ships only what is missing. ``inputs``: the push receiver's ``scan`` requests of the job's inputs here;
``inputs_ready`` says whether the node holds them all as they are (``node_receiver.holds``: size,
mtime, a cached hash, no stray checkpoint), so a launch whose inputs are there needs no push session.
With ``start``, when every ``check`` path exists and the inputs are ready, the job is started from
the spec just written (the ``start`` verb, in this process: staging and start are one round trip) and
the answer is ``start``'s, with ``staged`` beside it; a refusal is ``start``'s error. Otherwise nothing
is started (``started`` false): the controller ships the code or pushes the inputs, then starts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List

from orchestrator.agent.node.base import EXIT_USAGE, AgentError, Json, write_atomic


def rotate(logs: List[str]) -> None:
    for log in logs:
        if os.path.exists(log):
            os.replace(log, f"{log}.{int(os.path.getmtime(log))}")


def next_attempt(folder: str) -> None:
    if os.path.isdir(folder):
        n = 1
        while os.path.exists(f"{folder}.attempt-{n}"):
            n += 1
        os.rename(folder, f"{folder}.attempt-{n}")


def inputs_ready(requests: List[Json]) -> bool:
    """True when this node holds every file the push ``requests`` name (see the module docstring)."""
    if not requests:
        return True
    from orchestrator.transfer.node_receiver import holds

    try:
        return all(holds(r) for r in requests)
    except (OSError, KeyError, TypeError, ValueError):  # an unreadable folder or request: let the push see
        return False


def cmd_stage(args: argparse.Namespace) -> Json:
    return stage_bundle(sys.stdin.buffer.read(), args.workdir)


def stage_bundle(data: bytes, workdir: str) -> Json:
    """Stage from the bundle ``data`` (JSON, see the module docstring); ``stage``'s answer."""
    try:
        bundle = json.loads(data or b"{}")
        files = [(str(p), int(m), str(text)) for p, m, text in bundle.get("files", [])]
    except (ValueError, TypeError, AttributeError) as e:
        raise AgentError(EXIT_USAGE, f"stage: not a bundle: {e}") from None
    rotate([str(x) for x in bundle.get("rotate", [])])
    if bundle.get("next_attempt"):
        next_attempt(str(bundle["next_attempt"]))
    for path, mode, text in files:
        write_atomic(path, text.encode("utf-8"), mode)
    checked = {str(p): os.path.exists(str(p)) for p in bundle.get("check", [])}
    ready = inputs_ready(bundle.get("inputs") or [])
    staged = {"written": len(files), "bytes": sum(len(t) for _, _, t in files), "present": checked,
              "inputs_ready": ready}  # fmt: skip
    start = bundle.get("start")
    if not start or not all(checked.values()) or not ready:
        return dict(staged, started=False)
    from orchestrator.agent.node.start import cmd_start

    run = argparse.Namespace(spec=str(start["spec"]), force=bool(start.get("force")), foreground=False,
                             workdir=workdir)  # fmt: skip
    try:
        return dict(cmd_start(run), staged=staged, started=True)
    except AgentError as e:
        e.extra.setdefault("staged", staged)
        raise
