"""One kept-open channel from the controller to one node's ``watch`` stream (``orchestrator.agent.node.watch``).

A thread per node reads the stream's JSON lines and puts every event into the watcher's inbox as
``(host, message)``; replies to commands resolve the Future that ``request`` returned. When the stream
drops (a cut link, a killed session) the thread puts a ``down`` message and opens it again with
``--after`` the last seq it received, so no event is lost; a ``hello`` (with the job's status snapshot)
starts every connection. Commands go out on the same channel: ``request("stop", grace=3)``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Optional

from orchestrator.errors import RemoteCommandError, TransportError
from orchestrator.transport.stream import Stream

Message = dict[str, Any]
Opener = Callable[[int], Stream]  # after seq -> a started `watch` stream
READ_S = 1.0  # a read returns this often without data, so that ``close`` is seen promptly
RETRY_S = (0.2, 5.0)  # first and longest wait between two connection attempts


class NodeChannel:
    """The stream of one node: ``start`` it, ``request`` commands, ``close`` it (see the module docstring)."""

    def __init__(self, host: str, opener: Opener, inbox: queue.Queue):
        self.host, self.opener, self.inbox = host, opener, inbox
        self.seq = 0  # the last journal entry received
        self.last_seen: Optional[float] = None  # wall time of the last line received
        self.connected = False
        self._stream: Optional[Stream] = None
        self._lock = threading.Lock()
        self._pending: dict[str, Future] = {}
        self._ids = itertools.count(1)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"watch-{host}", daemon=True)

    def start(self) -> NodeChannel:
        self._thread.start()
        return self

    # -- reading ----------------------------------------------------------------------------------
    def _loop(self) -> None:
        delay = RETRY_S[0]
        while not self._closed.is_set():
            try:
                stream = self.opener(self.seq)
            except Exception as exc:  # unreachable now: try again, the watcher counts the silence
                self.inbox.put((self.host, {"kind": "down", "error": str(exc).splitlines()[0]}))
            else:
                with self._lock:
                    self._stream = stream
                error = self._read(stream)
                with self._lock:
                    self._stream, self.connected = None, False
                self._fail_pending(error)
                with contextlib.suppress(Exception):
                    stream.close()
                if self._closed.is_set():
                    return
                self.inbox.put((self.host, {"kind": "down", "error": error}))
                delay = RETRY_S[0] if self.last_seen and time.time() - self.last_seen < 5 else delay
            self._closed.wait(delay)
            delay = min(delay * 2, RETRY_S[1])

    def _read(self, stream: Stream) -> str:
        """Dispatch the stream's lines until it ends; why it ended."""
        while not self._closed.is_set():
            try:
                line = stream.readline(timeout=READ_S)
            except TransportError:
                continue  # nothing within READ_S: the watcher judges silence by heartbeats
            except Exception as exc:
                return f"the watch stream failed: {exc}"
            if not line.endswith(b"\n"):
                return self._ended(stream)
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "kind" not in message:
                continue  # the agent's closing answer
            self.last_seen = time.time()
            if message["kind"] == "hello":
                self.connected = True
            if message["kind"] == "reply":
                self._resolve(message)
                continue
            if message["kind"] not in ("heartbeat", "gap") and "seq" in message:
                self.seq = max(self.seq, int(message["seq"]))
            self.inbox.put((self.host, message))
        return "closed"

    def _ended(self, stream: Stream) -> str:
        try:
            end = stream.wait(timeout=5)
        except TransportError as exc:
            return f"the watch stream ended: {exc}"
        err = end.stderr.decode("utf-8", "replace").strip().splitlines()
        out = end.stdout.decode("utf-8", "replace").strip().splitlines()
        why = (out[-1] if out else "") or (err[-1] if err else "")
        return f"the watch stream ended (exit {end.exit_code}){': ' + why if why else ''}"

    # -- commands ---------------------------------------------------------------------------------
    def _resolve(self, message: Message) -> None:
        with self._lock:
            fut = self._pending.pop(str(message.get("id")), None)
        if fut is None:
            return
        if message.get("ok"):
            fut.set_result(message.get("answer") or {})
        else:
            code = int(message.get("exit_code") or 1)
            fut.set_exception(RemoteCommandError(self.host, f"watch: {message.get('error')}", code,
                                                 stderr=str(message.get("error"))))  # fmt: skip

    def _fail_pending(self, error: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for fut in pending.values():
            fut.set_exception(TransportError(f"{self.host}: {error}"))

    def request(self, op: str, **args: Any) -> Future:
        """Send one command; its Future gets the answer (dict), RemoteCommandError or TransportError."""
        fut: Future = Future()
        rid = f"{op}-{next(self._ids)}"
        with self._lock:
            if self._stream is None or not self.connected:
                fut.set_exception(TransportError(f"{self.host}: the watch channel is not connected"))
                return fut
            self._pending[rid] = fut
            try:
                self._stream.write((json.dumps(dict(args, id=rid, op=op)) + "\n").encode())
            except TransportError as exc:
                self._pending.pop(rid, None)
                fut.set_exception(exc)
        return fut

    def close(self) -> None:
        """End the stream (the node's ``watch`` sees its stdin end and exits)."""
        self._closed.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close_stdin()
        self._thread.join(timeout=READ_S + 1)
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()
