"""A process on a node with a byte stream into its stdin and line-wise answers from its stdout.

The transport's ``run`` buffers a whole command; a push needs to stream gigabytes into the node
receiver and read its port line while it runs. Over SSH this is an exec channel of the node's
connection; on a local node, a subprocess.
"""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import time
from typing import Optional, Protocol, Sequence

from orchestrator.errors import TransportError
from orchestrator.transport import LocalTransport, Transport, build_command


class RemoteProcess(Protocol):
    host: str

    def write(self, data: bytes) -> None: ...

    def close_stdin(self) -> None: ...

    def readline(self, timeout: float) -> bytes: ...

    def finish(self, timeout: float) -> tuple[int, bytes, bytes]: ...

    def close(self) -> None: ...


class _LocalProcess:
    def __init__(self, host: str, argv: Sequence[str]):
        self.host = host
        self.proc = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def write(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except OSError as exc:
            raise TransportError(f"{self.host}: receiver stopped reading: {exc}") from None

    def close_stdin(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def readline(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if ready else b""

    def finish(self, timeout: float) -> tuple[int, bytes, bytes]:
        try:
            out, err = self.proc.communicate(timeout=timeout)  # closes stdin first
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise TransportError(f"{self.host}: receiver did not finish within {timeout:g}s") from None
        return self.proc.returncode, out, err

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class _SshProcess:
    def __init__(self, transport: Transport, argv: Sequence[str]):
        self.host = transport.host
        # The transport has no public streaming call yet: its session opener (reconnecting) is used.
        self.chan = transport._channel()  # type: ignore[attr-defined]
        self.chan.exec_command(build_command(argv))
        self.out = b""

    def write(self, data: bytes) -> None:
        try:
            self.chan.sendall(data)
        except OSError as exc:
            raise TransportError(f"{self.host}: receiver stream broke: {exc}") from None

    def close_stdin(self) -> None:
        try:
            self.chan.shutdown_write()
        except OSError:
            pass

    def readline(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.out and time.monotonic() < deadline and not self.chan.exit_status_ready():
            if self.chan.recv_ready():
                self.out += self.chan.recv(65536)
            else:
                select.select([self.chan], [], [], 0.2)
        while self.chan.recv_ready() and b"\n" not in self.out:
            self.out += self.chan.recv(65536)
        line, sep, rest = self.out.partition(b"\n")
        if not sep:
            return b""
        self.out = rest
        return line + sep

    def finish(self, timeout: float) -> tuple[int, bytes, bytes]:
        self.close_stdin()
        deadline = time.monotonic() + timeout
        out, err = bytearray(self.out), bytearray()
        while True:
            while self.chan.recv_ready():
                out += self.chan.recv(65536)
            while self.chan.recv_stderr_ready():
                err += self.chan.recv_stderr(65536)
            if (
                self.chan.exit_status_ready()
                and not self.chan.recv_ready()
                and not self.chan.recv_stderr_ready()
            ):
                if self.chan.eof_received or self.chan.closed:
                    break
            if time.monotonic() > deadline:
                raise TransportError(f"{self.host}: receiver did not finish within {timeout:g}s")
            select.select([self.chan], [], [], 0.2)
        self.out = b""
        return self.chan.recv_exit_status(), bytes(out), bytes(err)

    def close(self) -> None:
        self.chan.close()


def openssh_argv(transport: Transport, argv: Sequence[str]) -> Optional[list[str]]:
    """The OpenSSH client command running ``argv`` on an SSH node with the same user, port, key and
    known_hosts (host keys checked, no prompts), or None without an ``ssh`` binary or SSH options."""
    o = getattr(transport, "options", None)
    if o is None or shutil.which("ssh") is None:
        return None
    cmd = ["ssh", "-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
           "-o", f'UserKnownHostsFile="{o.known_hosts_path}"', "-o", f"ConnectTimeout={max(1, int(o.connect_timeout))}",
           "-p", str(o.port), "-l", o.user]  # fmt: skip
    if o.key:
        cmd += ["-i", o.key, "-o", "IdentitiesOnly=yes"]
    return cmd + ["--", transport.host, build_command(argv)]


def start(transport: Transport, argv: Sequence[str], bulk: bool = False) -> RemoteProcess:
    """Start ``argv`` on the transport's node with a streamed stdin.

    ``bulk`` streams (the data itself) go through the OpenSSH client when there is one: its ciphers run
    at twice paramiko's speed. Everything else uses the transport's own connection.
    """
    if isinstance(transport, LocalTransport):
        return _LocalProcess(transport.host, argv)
    ssh = openssh_argv(transport, argv) if bulk else None
    return _LocalProcess(transport.host, ssh) if ssh else _SshProcess(transport, argv)


def last_json(host: str, code: int, out: bytes, err: bytes) -> dict:
    """The JSON answer on the last stdout line, or TransportError with the stderr tail."""
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = "\n".join(err.decode(errors="replace").strip().splitlines()[-8:])
        raise TransportError(f"{host}: node receiver exited {code} without an answer\n{tail}") from None
    return answer


def start_with_config(
    transport: Transport, argv: Sequence[str], conf: dict, bulk: bool = False
) -> RemoteProcess:
    proc = start(transport, argv, bulk)
    proc.write(json.dumps(conf).encode() + b"\n")
    return proc


def call(transport: Transport, argv: Sequence[str], conf: dict, timeout: float = 600) -> dict:
    """Run a receiver verb with ``conf`` on stdin and return its JSON answer."""
    proc: Optional[RemoteProcess] = None
    try:
        proc = start_with_config(transport, argv, conf)
        return last_json(transport.host, *proc.finish(timeout))
    finally:
        if proc is not None:
            proc.close()
