"""SshTransport: one paramiko connection per node, reused (thread-safely) for every command and file.

Behind jump hosts (``ssh.proxy_jump``, or ProxyJump from ``ssh.config``), each hop is its own
connection tunnelled through a direct-tcpip channel of the previous one, as ``ssh -J`` does. Host keys
are checked at every hop against the node's known_hosts file (the inventory's, else ~/.ssh/known_hosts);
an unknown or changed key is a HostKeyError that names the host, the file and the fix, and is never
accepted. Authentication is by key or agent only. Each failure to connect is a TransportError naming
the hop (host, port, user) and saying what to check. The TCP connection sends and acknowledges SSH's
small packets at once (``_dial``): a command on a kept connection costs a round trip, not a 40 ms
delayed ACK.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from pathlib import Path
from typing import Optional, Sequence

import paramiko
from paramiko.sftp import CMD_EXTENDED

from orchestrator.errors import HostKeyError, TransportError
from orchestrator.transport.base import (
    Env,
    RunResult,
    build_command,
    checked,
    display_command,
    mask,
    secret_values,
)
from orchestrator.transport.files import temp_name, write_atomic
from orchestrator.transport.openssh import openssh_argv
from orchestrator.transport.route import describe, route
from orchestrator.transport.settings import SshOptions
from orchestrator.transport.ssh_errors import RejectUnknown, connect_error
from orchestrator.transport.stream import ChannelStream, ProcessStream, Stream

logging.getLogger("paramiko").addHandler(logging.NullHandler())  # our errors say it better

_CHUNK = 1 << 16
_ENDED_WAIT = 1.0  # s a closed channel may take to show the exit status that came before its close


class SshTransport:
    """Commands and files on one node over SSH; ``connect()`` is implicit on first use."""

    def __init__(self, host: str, options: SshOptions):
        self.host = host
        self.options = options
        self._client: Optional[paramiko.SSHClient] = None
        self._jumps: list[paramiko.SSHClient] = []  # the jump hosts' connections, first hop first
        self._sftp: Optional[paramiko.SFTPClient] = None
        self._lock = threading.Lock()
        self._sftp_lock = threading.Lock()

    # -- connection -------------------------------------------------------------------------------
    @property
    def where(self) -> str:
        o = self.options
        return f"{o.user}@{self.host}:{o.port}"

    def connect(self) -> SshTransport:
        """Open the connection now (errors surface here rather than at the first command)."""
        self._transport()
        return self

    def _transport(self) -> paramiko.Transport:
        with self._lock:
            if self._client is not None:
                t = self._client.get_transport()
                if t is not None and t.is_active():
                    return t
                self._drop()
            self._client, self._jumps = self._open()
            t = self._client.get_transport()
            assert t is not None
            t.set_keepalive(15)
            return t

    def _open(self) -> tuple[paramiko.SSHClient, list[paramiko.SSHClient]]:
        """Connect along the route: each jump host, then the node through a direct-tcpip channel of the
        previous hop; every hop's host key is checked against the same known_hosts."""
        known = self.options.known_hosts_path
        hops = route(self.host, self.options)
        if not os.path.exists(known):
            target = hops[-1]
            raise HostKeyError(
                f"{describe(hops, len(hops) - 1)}: known_hosts file {known} does not exist; create it with "
                f"the verified keys (`ssh-keyscan -p {target.port} {target.host} >> {known}`) or set ssh.known_hosts"
            )
        clients: list[paramiko.SSHClient] = []
        sock = None
        try:
            for i in range(len(hops)):
                clients.append(self._connect_hop(hops, i, sock, known))
                if i + 1 < len(hops):
                    sock = self._tunnel(hops, i, clients[-1])
        except BaseException:
            for client in reversed(clients):
                client.close()
            raise
        return clients[-1], clients[:-1]

    def _connect_hop(self, hops, i: int, sock, known: str) -> paramiko.SSHClient:
        hop, timeout = hops[i], self.options.connect_timeout
        client = paramiko.SSHClient()
        client.load_host_keys(known)
        client.set_missing_host_key_policy(RejectUnknown(known, describe(hops, i), behind=i > 0))
        try:
            sock = sock if sock is not None else _dial(hop.host, hop.port, timeout)
            client.connect(
                hop.host,
                port=hop.port,
                username=hop.user,
                key_filename=hop.key,
                look_for_keys=hop.key is None,
                allow_agent=True,
                sock=sock,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
            )
        except BaseException as exc:
            client.close()
            if isinstance(sock, socket.socket):
                sock.close()
            raise connect_error(exc, self.options, known, hops, i) from None
        return client

    def _tunnel(self, hops, i: int, client: paramiko.SSHClient) -> paramiko.Channel:
        """A direct-tcpip channel from hop ``i`` to hop ``i + 1`` (what ``ssh -W`` / ProxyJump uses)."""
        nxt, t = hops[i + 1], client.get_transport()
        assert t is not None
        try:
            return t.open_channel("direct-tcpip", (nxt.host, nxt.port), ("127.0.0.1", 0),
                                  timeout=self.options.connect_timeout)  # fmt: skip
        except paramiko.ChannelException as exc:
            reason = {1: "forwarding prohibited by the jump host", 2: "connect failed",
                      3: "unknown channel type", 4: "resource shortage"}.get(exc.code, exc.text)  # fmt: skip
            raise TransportError(
                f"{describe(hops, i + 1)}: the jump host {hops[i].where} cannot reach {nxt.host}:{nxt.port} "
                f"({reason}); check the node address and port as seen from the jump host, and that the jump "
                f"host allows TCP forwarding (AllowTcpForwarding)"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(
                f"{describe(hops, i + 1)}: no tunnel through {hops[i].where} to {nxt.host}:{nxt.port} ({exc or type(exc).__name__})"
            ) from None

    # -- commands ---------------------------------------------------------------------------------
    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60,
        env: Env = None,
        stdin: Optional[bytes] = None,
        check: bool = True,
        cwd: Optional[str] = None,
    ) -> RunResult:
        command, shown, secrets = (
            build_command(argv, env, cwd),
            display_command(argv, env, cwd),
            secret_values(env),
        )
        start = time.monotonic()
        chan = self._channel()
        try:
            chan.exec_command(command)
            _send_input(chan, stdin)
            code, out, err = _collect(chan, start + timeout)
        except TimeoutError:
            raise TransportError(
                f"{self.where}: `{mask(shown, secrets)}` timed out after {timeout:g}s (it may still run there)"
            ) from None
        except (paramiko.SSHException, OSError) as exc:
            raise TransportError(
                f"{self.where}: connection lost running `{mask(shown, secrets)}`: {exc}"
            ) from None
        finally:
            chan.close()
        result = RunResult(self.host, shown, code, out, err, time.monotonic() - start)
        return checked(result, check, secrets)

    def open_stream(
        self, argv: Sequence[str], *, env: Env = None, cwd: Optional[str] = None, bulk: bool = False
    ) -> Stream:
        """``argv`` on the node as a Stream: an exec channel of this connection, or with ``bulk`` an
        OpenSSH client process (host key checked alike; its ciphers are faster) when ``ssh`` exists."""
        command, shown = (
            build_command(argv, env, cwd),
            mask(display_command(argv, env, cwd), secret_values(env)),
        )
        ssh = openssh_argv(self.host, self.options, command) if bulk else None
        if ssh is not None:
            return ProcessStream(self.host, ssh, shown)
        chan = self._channel()
        try:
            return ChannelStream(self.host, chan, command, shown)
        except (paramiko.SSHException, OSError) as exc:
            chan.close()
            raise TransportError(f"{self.where}: cannot start `{shown}`: {exc}") from None

    def _channel(self) -> paramiko.Channel:
        timeout = self.options.connect_timeout
        try:
            return self._transport().open_session(timeout=timeout)
        except (paramiko.SSHException, EOFError, OSError):
            with self._lock:
                self._drop()  # a dead connection (node rebooted, sshd restarted): reconnect once
        try:
            return self._transport().open_session(timeout=timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransportError(f"{self.where}: cannot open an SSH session: {exc}") from None

    # -- files ------------------------------------------------------------------------------------
    def put(self, local: Path, remote: str, *, mode: int = 0o644) -> None:
        """Copy ``local`` to ``remote`` atomically (temp name, fsync, rename), creating parent folders."""
        with open(local, "rb") as fh:
            self._write(remote, lambda f: _copy(fh, f), mode)

    def put_bytes(self, data: bytes, remote: str, *, mode: int = 0o644) -> None:
        """Write ``data`` to ``remote`` atomically, creating parent folders."""
        self._write(remote, lambda f: f.write(data), mode)

    def get(self, remote: str, local: Path) -> None:
        """Copy ``remote`` to ``local`` atomically (local file 0600)."""
        with self._sftp_lock:
            sftp = self._sftp_client()
            try:
                with sftp.open(remote, "rb") as src:
                    src.prefetch()
                    write_atomic(Path(local), lambda dst: _copy(src, dst), 0o600)
            except OSError as exc:
                raise TransportError(f"{self.where}: cannot read {remote}: {exc.strerror or exc}") from None

    def _write(self, remote: str, fill, mode: int) -> None:
        tmp = temp_name(remote)
        with self._sftp_lock:
            sftp = self._sftp_client()
            try:
                _makedirs(sftp, os.path.dirname(remote))
                with sftp.open(tmp, "wb") as f:
                    f.set_pipelined(True)
                    fill(f)
                    f.flush()
                    _fsync(sftp, f)
                sftp.chmod(tmp, mode)
                sftp.posix_rename(tmp, remote)
            except OSError as exc:
                _remove_quietly(sftp, tmp)
                raise TransportError(f"{self.where}: cannot write {remote}: {exc.strerror or exc}") from None

    def _sftp_client(self) -> paramiko.SFTPClient:
        t = self._transport()
        if self._sftp is None or self._sftp.get_channel() is None or self._sftp.get_channel().closed:
            self._sftp = paramiko.SFTPClient.from_transport(t)
        return self._sftp

    # -- lifetime ---------------------------------------------------------------------------------
    def _drop(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        if self._client is not None:
            self._client.close()
        for jump in reversed(self._jumps):
            jump.close()
        self._client, self._sftp, self._jumps = None, None, []

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __repr__(self) -> str:
        return f"SshTransport({self.where!r})"


_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class _PromptAckSocket(socket.socket):
    """A TCP socket that acknowledges what it reads at once (Linux TCP_QUICKACK after each read).

    Right after authentication sshd sends a hostkeys notice that needs no answer. The kernel would delay
    its ACK by 40 ms, and sshd (Nagle on) holds its answer to our first channel open until that ACK
    comes, so the first command on every connection took 40 ms longer than it needed."""

    def recv(self, size: int, flags: int = 0) -> bytes:
        data = super().recv(size, flags)
        self.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        return data


def _dial(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection for SSH's small requests and answers (a channel open, an exec, a window adjust):
    Nagle off, so none waits for the peer's delayed ACK (40 ms on Linux: the handshake took 65 ms instead
    of 25 and every command 45 ms instead of 4), and our ACKs prompt (see _PromptAckSocket)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if _TCP_QUICKACK is None:
        return sock
    prompt = _PromptAckSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    prompt.settimeout(timeout)
    return prompt


def _send_input(chan: paramiko.Channel, stdin: Optional[bytes]) -> None:
    """Send ``stdin`` and its end. A command may end, and its channel close, before it has read all of
    it (a missing file, a usage error): that is its answer, with an exit status, not a lost connection."""
    try:
        if stdin:
            chan.sendall(stdin)
        if not chan.closed:
            chan.shutdown_write()
    except OSError:
        if not chan.status_event.wait(_ENDED_WAIT):  # no exit status: the connection is gone
            raise


def _collect(chan: paramiko.Channel, deadline: float) -> tuple[int, str, str]:
    """Read stdout and stderr until the command ends; TimeoutError past ``deadline``."""
    out, err = bytearray(), bytearray()

    def drain() -> None:
        while chan.recv_ready():
            out.extend(chan.recv(_CHUNK))
        while chan.recv_stderr_ready():
            err.extend(chan.recv_stderr(_CHUNK))

    while True:
        drain()
        if chan.eof_received or chan.closed:
            drain()  # data sent before the EOF is buffered by now; the exit status follows
            if not chan.status_event.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        select.select([chan], [], [], min(remaining, 0.5))
    code = chan.recv_exit_status()
    # -1: killed by a signal (exit-signal, no status), shown as 255 like OpenSSH's client does.
    return (code if code >= 0 else 255), out.decode(errors="replace"), err.decode(errors="replace")


def _copy(src, dst) -> None:
    while chunk := src.read(_CHUNK):
        dst.write(chunk)


def _fsync(sftp: paramiko.SFTPClient, f: paramiko.SFTPFile) -> None:
    """fsync the open remote file through OpenSSH's fsync@openssh.com extension when offered."""
    try:
        sftp._request(CMD_EXTENDED, "fsync@openssh.com", f.handle)
    except (OSError, paramiko.SSHException):
        pass  # server without the extension: the rename still makes the write atomic


def _makedirs(sftp: paramiko.SFTPClient, folder: str) -> None:
    missing = []
    while folder and folder not in ("/", "."):
        try:
            sftp.stat(folder)
            break
        except FileNotFoundError:
            missing.append(folder)
            folder = os.path.dirname(folder)
    for path in reversed(missing):
        try:
            sftp.mkdir(path)
        except OSError:
            sftp.stat(path)  # created meanwhile by someone else is fine; anything else raises


def _remove_quietly(sftp: paramiko.SFTPClient, path: str) -> None:
    try:
        sftp.remove(path)
    except OSError:
        pass
