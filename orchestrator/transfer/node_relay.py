"""Node side of `orchestrate push`: the relay between nodes (Python 3.9+, standard library only; shipped
beside ``node_receiver.py``).

- ``Stage``: a thread that runs the jobs put to it in order, with a bounded queue, so a node reads,
  forwards and stores one stream at the same time (a pipeline) with bounded memory.
- ``Listener``: where the previous node of a chain connects. It binds the node's cluster address only
  (``bind``; ``127.0.0.1`` when hops run through SSH), accepts any number of connections at once and
  gives each ``HANDSHAKE_S`` to send the one-time token, so no stray or slow connection can hold up
  the real one; the first with the right token wins.
- ``Forwarder``: the connection to the next node, a TCP socket, or with ``via: ssh`` an ``ssh -W`` to
  the next node's loopback listener (encrypted, for data networks that are not trusted; needs the
  node's user to reach the next node by SSH key). A failure is recorded, never raised.
"""

from __future__ import annotations

import hmac
import os
import queue
import select
import socket
import subprocess
import threading
from typing import Any, BinaryIO, Callable, Dict, Optional

CHUNK = 1 << 20
DEPTH = 16  # chunks a stage may hold waiting (memory: DEPTH * CHUNK per stage)
FORWARD_DEPTH = 16  # chunks (<= CHUNK each, often less): what waits here is latency paid at every hop
HANDSHAKE_S = 10.0  # a connection has this long to send the token
MAX_PENDING = 64  # connections being checked at once; more are refused
Json = Dict[str, Any]
_END = object()


class Stage:
    """Runs the callables put to it, in order, on its own thread; ``put`` blocks while ``DEPTH`` wait.

    A callable that raises is recorded in ``error`` and the stage goes on with the next ones."""

    def __init__(self, name: str, depth: int = DEPTH):
        self.queue: queue.Queue = queue.Queue(depth)
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def put(self, job: Callable[[], None]) -> None:
        self.queue.put(job)

    def _run(self) -> None:
        while True:
            job = self.queue.get()
            if job is _END:
                return
            try:
                job()
            except BaseException as exc:  # noqa: BLE001  # recorded; the reader decides
                self.error = self.error or exc

    def close(self) -> None:
        """Wait until every job put so far has run."""
        self.queue.put(_END)
        self.thread.join()


def _bind_address(listen: Json) -> tuple:
    """The (host, port 0) to listen on: the node's cluster address, never every interface."""
    host = listen.get("bind") or ""
    if not host:
        raise SystemExit("relay listen request without a bind address (the node's cluster address)")
    try:
        family, _, _, _, addr = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
    except OSError as exc:
        raise SystemExit(f"cannot resolve the relay bind address {host!r}: {exc}") from None
    return family, addr


class Listener:
    """Listens for the previous node (see the module docstring); ``port`` is what it listens on."""

    def __init__(self, listen: Json):
        self.token = listen["token"].encode()
        self.handshake_s = float(listen.get("handshake_timeout", HANDSHAKE_S))
        self.idle_s = float(listen.get("idle_timeout", 300))
        family, addr = _bind_address(listen)
        self.server = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.server.bind(addr)
        except OSError as exc:
            self.server.close()
            raise SystemExit(
                f"cannot listen on {addr[0]} (is it this node's cluster address?): {exc}"
            ) from None
        self.server.listen(MAX_PENDING)
        self.port = self.server.getsockname()[1]
        self.won: queue.Queue = queue.Queue()
        self.wake_r, self.wake_w = os.pipe()
        self.pending = threading.BoundedSemaphore(MAX_PENDING)
        self.closed = threading.Event()
        self.lock = threading.Lock()

    def _check(self, conn: socket.socket) -> None:
        """Read the token (within ``handshake_s``); hand over the connection if it is right."""
        try:
            conn.settimeout(self.handshake_s)
            reader = conn.makefile("rb", buffering=CHUNK)  # one reader: it may buffer data after the token
            try:
                got = reader.readline(len(self.token) + 1).rstrip(b"\n")
            except OSError:
                got = b""
            with self.lock:  # one winner, even when two connections send the token at once
                won = hmac.compare_digest(got, self.token) and not self.closed.is_set()
                if won:
                    self.closed.set()
            if won:
                conn.settimeout(self.idle_s)
                self.won.put(reader)
                os.write(self.wake_w, b"x")
                return
            reader.close()
            conn.close()
        finally:
            self.pending.release()

    def accept(self, timeout: float, stdin: Optional[BinaryIO]) -> BinaryIO:
        """The first connection that sends the token; SystemExit when none comes within ``timeout``
        or when ``stdin`` (the controller) ends first."""
        watch = [self.server, self.wake_r] + ([stdin] if stdin is not None else [])
        try:
            while True:
                ready, _, _ = select.select(watch, [], [], timeout)
                if not ready:
                    raise SystemExit("no connection from the previous node")
                if self.wake_r in ready:
                    return self.won.get()
                if stdin is not None and stdin in ready and not stdin.read1(1):  # type: ignore[attr-defined]
                    raise SystemExit("the controller went away before the previous node connected")
                if self.server in ready:
                    conn, _ = self.server.accept()
                    if not self.pending.acquire(blocking=False):
                        conn.close()  # too many connections being checked: refuse this one
                        continue
                    threading.Thread(target=self._check, args=(conn,), daemon=True).start()
        finally:
            self.closed.set()
            self.server.close()
            os.close(self.wake_r)
            os.close(self.wake_w)


class Forwarder:
    """The connection to the next node of a chain, fed by its own ``Stage`` (see the module docstring)."""

    def __init__(self, conf: Optional[Json]):
        self.sock: Optional[socket.socket] = None
        self.proc: Optional[subprocess.Popen] = None
        self.error: Optional[str] = None
        self.stage: Optional[Stage] = None
        if not conf:
            return
        try:
            if conf.get("via") == "ssh":
                self.proc = subprocess.Popen(_ssh_argv(conf), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL)  # fmt: skip
                self.proc.stdin.write(conf["token"].encode() + b"\n")  # type: ignore[union-attr]
            else:
                self.sock = socket.create_connection(
                    (conf["host"], conf["port"]), timeout=conf.get("timeout", 10)
                )
                self.sock.settimeout(conf.get("idle_timeout", 300))
                self.sock.sendall(conf["token"].encode() + b"\n")
            self.stage = Stage("forward", FORWARD_DEPTH)
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        self.error = self.error or f"forward to next node failed: {exc}"
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        if self.proc is not None:
            self.proc.kill()

    def _send(self, data: Any) -> None:
        if self.error is not None:
            return
        try:
            if self.sock is not None:
                self.sock.sendall(data)
            elif self.proc is not None:
                self.proc.stdin.write(data)  # type: ignore[union-attr]
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def send(self, data: Any) -> None:
        """Queue ``data`` (bytes the caller no longer changes) for the next node."""
        if self.stage is not None and self.error is None:
            self.stage.put(lambda: self._send(data))

    def close(self) -> None:
        """Send what is queued, then wait until the next node has read everything and closed."""
        if self.stage is not None:
            self.stage.close()
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_WR)
                self.sock.recv(1)
            except OSError:
                pass
            self.sock.close()
        if self.proc is not None:
            try:
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.stdout.read()  # type: ignore[union-attr]  # ends when the next node closes
                self.proc.wait(30)
            except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
                self._fail(exc)


def _ssh_argv(conf: Json) -> list:
    """``ssh -W`` to the next node's loopback listener (host keys checked, never a prompt)."""
    argv = ["ssh", "-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10",
            "-W", f"127.0.0.1:{int(conf['port'])}"]  # fmt: skip
    if conf.get("ssh_port"):
        argv += ["-p", str(int(conf["ssh_port"]))]
    if conf.get("user"):
        argv += ["-l", str(conf["user"])]
    return argv + ["--", str(conf["host"])]
