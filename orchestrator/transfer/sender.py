"""Running a route over the nodes' receiver sessions (opened by the scan): stream the files into the
first node's session; in a relay chain, every other node's receiver listens on an ephemeral port of
its cluster address (all at once; each tells the controller its port over SSH, then learns where it
forwards), and the previous node forwards the stream to it, authenticated by a one-time token passed
through stdin."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Callable, Optional

from orchestrator.errors import TransportError
from orchestrator.transfer import remote
from orchestrator.transfer.model import NodeReport
from orchestrator.transfer.node_receiver import encode_frame
from orchestrator.transfer.routes import NodeNeeds, Route, stream_items

Progress = Callable[[int], None]
SEND_CHUNK = 4 << 20  # bytes per kernel copy into the stream (progress and rate limit steps)


class RateLimit:
    """Caps the bytes per second sent by all streams together (None: no cap); ``cancel`` stops them all."""

    def __init__(self, rate: Optional[float]):
        self.rate, self.sent, self.start = rate, 0, time.monotonic()
        self.step = min(SEND_CHUNK, max(1 << 16, int(rate / 8))) if rate else SEND_CHUNK  # bytes per take()
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


def send_stream(session: remote.Session, route: Route, limit: RateLimit, progress: Progress) -> None:
    """Write every file of ``route`` into the session as frames (``progress`` gets each piece's size)."""
    out = session.stream
    assert out is not None
    for item, offset in stream_items(route):
        out.write(encode_frame(item.entry.header(offset)))
        with open(item.source, "rb") as f:
            pos, end = offset, item.entry.size
            while pos < end:
                n = min(limit.step, end - pos)
                limit.take(n)
                out.send_file(f, pos, n)
                pos += n
                progress(n)
    out.write(encode_frame({"op": "end"}))


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
    route: Route, limit: RateLimit, progress: Progress, timeout: float
) -> tuple[list[NodeReport], int]:
    """Push straight from the controller to the route's one node."""
    n = route.nodes[0]
    count = Counter(progress)
    try:
        n.session.request("receive", receive_conf(n))
        send_stream(n.session, route, limit, count)
        return [report(n, "direct", n.session.answer(timeout))], count.sent
    except (OSError, TransportError) as exc:
        return [report(n, "direct", None, str(exc))], count.sent


def _start_listening(n: NodeNeeds, hop: str) -> str:
    """Ask ``n``'s receiver to listen (on its cluster address; loopback when hops run through SSH) and
    to wait for where it forwards (``forward_later``); the one-time token its predecessor must send."""
    token = secrets.token_hex(16)
    bind = "127.0.0.1" if hop == "ssh" else n.target.host
    n.session.request("receive", receive_conf(n, {"token": token, "bind": bind, "forward_later": True}))
    return token


def _address(n: NodeNeeds, token: str, hop: str) -> dict:
    """Where ``n`` listens (its reply to ``_start_listening``): what its predecessor forwards to."""
    host = n.target.host
    try:
        port = int(n.session.reply(30)["port"])
    except (KeyError, TypeError, ValueError):
        raise TransportError(f"{host}: relay receiver did not report a port") from None
    if hop != "ssh":
        return {"host": host, "port": port, "token": token}
    ssh = n.target.node.ssh
    return {"host": host, "port": port, "token": token, "via": "ssh", "ssh_port": ssh.port, "user": ssh.user}


def _set_up_relays(
    nodes: tuple[NodeNeeds, ...], hop: str, errors: list[Optional[str]]
) -> tuple[list[bool], Optional[dict]]:
    """Every node but the head listens, all at once (one round trip, not one per node); each then learns
    the next listening node to forward to (a node that could not listen is left out of the chain).
    (which nodes started, the head's forward address)."""
    started, tokens, addresses = [False] * len(nodes), {}, {}
    for k in range(1, len(nodes)):
        try:
            tokens[k], started[k] = _start_listening(nodes[k], hop), True
        except (OSError, TransportError) as exc:
            errors[k] = str(exc)
    for k, token in tokens.items():
        try:
            addresses[k] = _address(nodes[k], token, hop)
        except (OSError, TransportError) as exc:
            errors[k] = str(exc)
    chain = sorted(addresses)
    for i, k in enumerate(chain):
        try:
            nodes[k].session.tell(addresses[chain[i + 1]] if i + 1 < len(chain) else None)
        except (OSError, TransportError) as exc:
            errors[k] = str(exc)
    return started, addresses[chain[0]] if chain else None


def run_chain(
    route: Route, limit: RateLimit, progress: Progress, timeout: float, hop: str = "tcp"
) -> tuple[list[NodeReport], int]:
    """Controller -> first node -> second node -> ...; a node that fails reports so (the engine retries it)."""
    nodes = route.nodes
    errors: list[Optional[str]] = [None] * len(nodes)
    count = Counter(progress)
    started, forward = _set_up_relays(nodes, hop, errors)
    head = nodes[0]
    try:
        head.session.request("receive", receive_conf(head, forward=forward))
        started[0] = True
        send_stream(head.session, route, limit, count)
    except (OSError, TransportError) as exc:
        errors[0] = str(exc)
    reports = []
    for k, n in enumerate(nodes):
        answer = None
        if started[k]:
            try:
                answer = n.session.answer(timeout)
            except (OSError, TransportError) as exc:
                errors[k] = errors[k] or str(exc)
        reports.append(report(n, f"relay {k + 1}/{len(nodes)}", answer, errors[k]))
    return reports, count.sent
