"""Running a route: stream the files into the first node's receiver; in a relay chain, each node's
receiver listens on an ephemeral port (told to the controller over SSH) and the previous node
forwards the stream to it, authenticated by a one-time token passed through stdin."""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any, Callable, Optional

from orchestrator.errors import TransportError
from orchestrator.transfer import remote, stream
from orchestrator.transfer.model import NodeReport
from orchestrator.transfer.node_receiver import CHUNK, encode_frame
from orchestrator.transfer.routes import NodeNeeds, Route, stream_items

Progress = Callable[[int], None]


class RateLimit:
    """Caps the bytes per second sent by all streams together (None: no cap); ``cancel`` stops them all."""

    def __init__(self, rate: Optional[float]):
        self.rate, self.sent, self.start = rate, 0, time.monotonic()
        self.lock = threading.Lock()
        self.cancel = threading.Event()

    def take(self, n: int) -> None:
        if self.cancel.is_set():
            raise TransportError("push interrupted")
        if not self.rate:
            return
        with self.lock:
            self.sent += n
            ahead = self.sent / self.rate - (time.monotonic() - self.start)
        if ahead > 0:
            time.sleep(ahead)


def receive_conf(n: NodeNeeds, listen: Optional[dict] = None, forward: Optional[dict] = None) -> dict:
    t = n.target
    return {
        "dest": t.dest,
        "cache": remote.node_cache(t.node.workdir),
        "files": {
            i.entry.rel: {**vars(i.entry), "trusted": n.send[i.entry.rel]}
            for i in t.items
            if i.entry.rel in n.send
        },
        "exclusive": remote.exclusive_map(t),
        "listen": listen,
        "forward": forward,
    }


def send_stream(proc: stream.RemoteProcess, route: Route, limit: RateLimit, progress: Progress) -> None:
    """Write every file of ``route`` into ``proc`` as frames (``progress`` gets each data chunk's size)."""
    for item, offset in stream_items(route):
        proc.write(encode_frame(item.entry.header(offset)))
        with open(item.source, "rb") as f:
            f.seek(offset)
            left = item.entry.size - offset
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise TransportError(f"{item.source} shrank while being pushed")
                limit.take(len(chunk))
                proc.write(chunk)
                left -= len(chunk)
                progress(len(chunk))
    proc.write(encode_frame({"op": "end"}))


class Counter:
    """Counts the data bytes a route sent (also when it fails midway) and feeds the progress bar."""

    def __init__(self, progress: Progress):
        self.sent, self.progress = 0, progress

    def __call__(self, n: int) -> None:
        self.sent += n
        self.progress(n)


def report(n: NodeNeeds, route: str, answer: Optional[dict], error: Optional[str] = None) -> NodeReport:
    """A node's report from its receiver answer (None when it gave none)."""
    t = n.target
    r = NodeReport(t.host, t.dest, route, files=len(t.items), skipped=len(n.same), bytes_resumed=n.resumed)
    if answer is None:
        r.error = error or "no answer from the node receiver"
        return r
    files = answer.get("files", {})
    bad = {rel: files.get(rel, {}) for rel in n.send if files.get(rel, {}).get("status") != "ok"}
    r.sent = len(n.send) - len(bad)
    r.bytes_written = int(answer.get("written", 0))
    r.removed = list(answer.get("removed", []))
    r.ok = bool(answer.get("ok")) and not bad
    if not r.ok:
        first = next(iter(bad.items()), None)
        why = (
            f"{first[0]}: {first[1].get('status', 'missing')} {first[1].get('message', '')}".strip()
            if first
            else ""
        )
        r.error = error or why or "the stream ended early"
    return r


def run_direct(
    pool: Any, route: Route, limit: RateLimit, progress: Progress, timeout: float
) -> tuple[list[NodeReport], int]:
    """Push straight from the controller to the route's one node."""
    n = route.nodes[0]
    proc, count = None, Counter(progress)
    try:
        node = n.target.node
        proc = stream.start_with_config(
            pool.get(node), remote.argv(node, "receive"), receive_conf(n), bulk=True
        )
        send_stream(proc, route, limit, count)
        answer = stream.last_json(n.target.host, *proc.finish(timeout))
        return [report(n, "direct", answer)], count.sent
    except (OSError, TransportError) as exc:
        return [report(n, "direct", None, str(exc))], count.sent
    finally:
        if proc is not None:
            proc.close()


def _listen(pool: Any, n: NodeNeeds, forward: Optional[dict]) -> tuple[stream.RemoteProcess, dict]:
    """Start a listening receiver on ``n``'s node; (process, the address its predecessor forwards to)."""
    token = secrets.token_hex(16)
    node = n.target.node
    proc = stream.start_with_config(
        pool.get(node), remote.argv(node, "receive"), receive_conf(n, {"token": token}, forward)
    )
    line = proc.readline(timeout=30)
    try:
        port = int(json.loads(line)["port"])
    except (ValueError, KeyError, TypeError):
        proc.close()
        raise TransportError(f"{node.host}: relay receiver did not report a port ({line[:200]!r})") from None
    return proc, {"host": node.host, "port": port, "token": token}


def run_chain(
    pool: Any, route: Route, limit: RateLimit, progress: Progress, timeout: float
) -> tuple[list[NodeReport], int]:
    """Controller -> first node -> second node -> ...; a node that fails reports so (the engine retries it)."""
    nodes = route.nodes
    procs: list[Optional[stream.RemoteProcess]] = [None] * len(nodes)
    errors: list[Optional[str]] = [None] * len(nodes)
    forward: Optional[dict] = None
    count = Counter(progress)
    try:
        for k in range(len(nodes) - 1, 0, -1):  # from the tail, so each node knows where to forward
            try:
                procs[k], forward = _listen(pool, nodes[k], forward)
            except (OSError, TransportError) as exc:
                errors[k], forward = str(exc), None  # the nodes after k are cut off: they get no stream
                for j in range(k + 1, len(nodes)):
                    errors[j] = errors[j] or f"relay setup failed at {nodes[k].target.host}"
        head = nodes[0]
        try:
            node = head.target.node
            conf = receive_conf(head, forward=forward)
            procs[0] = stream.start_with_config(pool.get(node), remote.argv(node, "receive"), conf, bulk=True)
            send_stream(procs[0], route, limit, count)
        except (OSError, TransportError) as exc:
            errors[0] = str(exc)
        reports = []
        for k, n in enumerate(nodes):
            answer = None
            if procs[k] is not None:
                try:
                    answer = stream.last_json(n.target.host, *procs[k].finish(timeout))
                except (OSError, TransportError) as exc:
                    errors[k] = errors[k] or str(exc)
            reports.append(report(n, f"relay {k + 1}/{len(nodes)}", answer, errors[k]))
        return reports, count.sent
    finally:
        for p in procs:
            if p is not None:
                p.close()
