"""Streams: a command on a node whose stdin is written piece by piece and whose stdout is read while it
runs (``Transport.open_stream``), for the cases ``run`` cannot serve: gigabytes into a process, or a
line read before the rest is sent.

Two implementations share the reading logic: ``ProcessStream`` is a local child process (a local node's
command, or the OpenSSH client carrying a bulk stream) and ``ChannelStream`` an exec channel of a
paramiko connection. Stderr is collected on the side (never blocks the command) and returned by
``wait``. A command must have its stdout read (``readline``/``read``/``wait``), or it may block.
"""

from __future__ import annotations

import os
import select
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import BinaryIO, Optional, Protocol, Sequence, runtime_checkable

import paramiko

from orchestrator.errors import TransportError

_CHUNK = 1 << 16
PIPE_SIZE = 1 << 20  # bigger pipes: fewer wake-ups of the writer and the reader
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux)


@dataclass(frozen=True)
class StreamExit:
    """How a streamed command ended: its exit code, the stdout not read before, and all its stderr."""

    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@runtime_checkable
class Stream(Protocol):
    """A running command: write its stdin, read its stdout, then ``wait`` for how it ended.

    Errors (the command stopped reading, no output in time, lost connection) are TransportError.
    ``close`` ends the command if it still runs; streams are context managers that close on exit.
    """

    host: str
    command: str  # the masked display form

    def write(self, data: bytes) -> None: ...

    def send_file(self, f: BinaryIO, offset: int, count: int) -> None: ...

    def close_stdin(self) -> None: ...

    def readline(self, timeout: float = 60) -> bytes: ...

    def read(self, n: int = -1, timeout: float = 60) -> bytes: ...

    def wait(self, timeout: float = 60) -> StreamExit: ...

    def close(self) -> None: ...

    def __enter__(self) -> Stream: ...

    def __exit__(self, *exc: object) -> None: ...


class _Reader:
    """Buffered ``readline``/``read`` over a ``_recv(timeout)`` that returns b"" at the end of output."""

    host: str
    command: str

    def __init__(self) -> None:
        self._buf = bytearray()
        self._eof = False

    def _recv(self, timeout: float) -> Optional[bytes]:
        """Some stdout bytes, b"" at its end, None when nothing came within ``timeout``."""
        raise NotImplementedError

    def _fill(self, deadline: float, timeout: float) -> None:
        data = self._recv(max(0.0, deadline - time.monotonic()))
        if data is None:
            raise TransportError(f"{self.host}: `{self.command}` gave no output within {timeout:g}s")
        if not data:
            self._eof = True
        self._buf += data

    def readline(self, timeout: float = 60) -> bytes:
        """The next stdout line (with its newline); the unfinished rest at the end of output, then b""."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf and not self._eof:
            self._fill(deadline, timeout)
        end = self._buf.find(b"\n") + 1 or len(self._buf)
        line = bytes(self._buf[:end])
        del self._buf[:end]
        return line

    def read(self, n: int = -1, timeout: float = 60) -> bytes:
        """Up to ``n`` stdout bytes (fewer only at the end of output); ``n < 0``: all until the end."""
        deadline = time.monotonic() + timeout
        while not self._eof and (n < 0 or len(self._buf) < n):
            self._fill(deadline, timeout)
        n = len(self._buf) if n < 0 else min(n, len(self._buf))
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _broken(self, exc: BaseException) -> TransportError:
        return TransportError(f"{self.host}: `{self.command}` stopped taking input: {exc}")

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # type: ignore[attr-defined]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class ProcessStream(_Reader):
    """A child process of this machine (a local command, or the OpenSSH client running a remote one)."""

    def __init__(self, host: str, argv: Sequence[str], shown: str, env=None, cwd: Optional[str] = None):
        super().__init__()
        self.host, self.command = host, shown
        pipe = subprocess.PIPE
        self.proc = subprocess.Popen(
            list(argv), stdin=pipe, stdout=pipe, stderr=pipe, env=env, cwd=cwd, bufsize=0
        )
        self._stdin, self._stdout = self.proc.stdin.fileno(), self.proc.stdout.fileno()  # type: ignore[union-attr]
        try:
            import fcntl

            fcntl.fcntl(self._stdin, _F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # the default pipe size works too
        self._err = bytearray()
        self._err_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._err_thread.start()

    def _drain_stderr(self) -> None:
        try:
            while chunk := os.read(self.proc.stderr.fileno(), _CHUNK):  # type: ignore[union-attr]
                self._err += chunk
        except (OSError, ValueError):
            pass  # closed under us by close()

    def write(self, data: bytes) -> None:
        try:
            _write_all(self._stdin, data)
        except (OSError, ValueError) as exc:
            raise self._broken(exc) from None

    def send_file(self, f: BinaryIO, offset: int, count: int) -> None:
        """``count`` bytes of ``f`` from ``offset`` into stdin, copied by the kernel (sendfile)."""
        try:
            while count > 0:
                sent = os.sendfile(self._stdin, f.fileno(), offset, count)
                if sent == 0:
                    raise TransportError(f"{getattr(f, 'name', f)} ended before offset {offset + count}")
                offset, count = offset + sent, count - sent
        except (OSError, ValueError) as exc:
            raise self._broken(exc) from None

    def close_stdin(self) -> None:
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass

    def _recv(self, timeout: float) -> Optional[bytes]:
        ready, _, _ = select.select([self._stdout], [], [], timeout)
        return os.read(self._stdout, _CHUNK) if ready else None

    def wait(self, timeout: float = 60) -> StreamExit:
        """Close stdin, read stdout to its end, and return the exit code (TransportError past ``timeout``)."""
        self.close_stdin()
        deadline = time.monotonic() + timeout
        rest = self.read(-1, timeout)
        try:
            code = self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise TransportError(f"{self.host}: `{self.command}` did not end within {timeout:g}s") from None
        self._err_thread.join(max(0.0, deadline - time.monotonic()))
        return StreamExit(code if code >= 0 else 128 - code, rest, bytes(self._err))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.close_stdin()
        self.proc.stdout.close()  # type: ignore[union-attr]
        self._err_thread.join(5)
        self.proc.stderr.close()  # type: ignore[union-attr]


class ChannelStream(_Reader):
    """An exec channel of a paramiko connection (``channel`` already opened, command not yet sent)."""

    def __init__(self, host: str, channel, command: str, shown: str):
        super().__init__()
        self.host, self.command, self.chan = host, shown, channel
        self._err = bytearray()
        self.chan.exec_command(command)

    def _drain_stderr(self) -> None:
        while self.chan.recv_stderr_ready():
            self._err += self.chan.recv_stderr(_CHUNK)

    def write(self, data: bytes) -> None:
        try:
            self.chan.sendall(data)
            self._drain_stderr()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._broken(exc) from None

    def send_file(self, f: BinaryIO, offset: int, count: int) -> None:
        f.seek(offset)
        while count > 0:
            chunk = f.read(min(_CHUNK * 4, count))
            if not chunk:
                raise TransportError(f"{getattr(f, 'name', f)} ended before offset {offset + count}")
            self.write(chunk)
            count -= len(chunk)

    def close_stdin(self) -> None:
        try:
            self.chan.shutdown_write()
        except OSError:
            pass

    def _recv(self, timeout: float) -> Optional[bytes]:
        deadline = time.monotonic() + timeout
        while True:
            self._drain_stderr()
            if self.chan.recv_ready():
                return self.chan.recv(_CHUNK)
            if self.chan.eof_received or self.chan.closed:
                return self.chan.recv(_CHUNK) if self.chan.recv_ready() else b""
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            select.select([self.chan], [], [], min(left, 0.5))

    def wait(self, timeout: float = 60) -> StreamExit:
        """Close stdin, read stdout to its end, and return the exit code (TransportError past ``timeout``)."""
        self.close_stdin()
        deadline = time.monotonic() + timeout
        rest = self.read(-1, timeout)
        if not self.chan.status_event.wait(max(0.0, deadline - time.monotonic())):
            raise TransportError(f"{self.host}: `{self.command}` did not end within {timeout:g}s")
        self._drain_stderr()
        code = self.chan.recv_exit_status()
        return StreamExit(code if code >= 0 else 255, rest, bytes(self._err))  # -1: killed by a signal

    def close(self) -> None:
        self.chan.close()


class EndedStream(_Reader):
    """A command that could not start (missing program or folder): ends at once like a shell would."""

    def __init__(self, host: str, shown: str, exit_code: int, stderr: bytes):
        super().__init__()
        self.host, self.command, self._eof = host, shown, True
        self._exit = StreamExit(exit_code, b"", stderr)

    def write(self, data: bytes) -> None:
        raise self._broken(BrokenPipeError("the command did not start"))

    def send_file(self, f: BinaryIO, offset: int, count: int) -> None:
        self.write(b"")

    def close_stdin(self) -> None:
        pass

    def wait(self, timeout: float = 60) -> StreamExit:
        return self._exit

    def close(self) -> None:
        pass
