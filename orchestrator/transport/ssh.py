"""SshTransport: one paramiko connection per node, reused (thread-safely) for every command and file.

Host keys are checked against the node's known_hosts file (the inventory's, else ~/.ssh/known_hosts);
an unknown or changed key is a HostKeyError that names the host, the file and the fix, and is never
accepted. Authentication is by key or agent only. Each failure to connect is a TransportError naming
host, port and user and saying what to check.
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
from orchestrator.transport.settings import SshOptions
from orchestrator.transport.stream import ChannelStream, ProcessStream, Stream

logging.getLogger("paramiko").addHandler(logging.NullHandler())  # our errors say it better

_CHUNK = 1 << 16


def _fingerprint(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    """Refuse a host whose key is not in known_hosts, telling how to add it after checking it."""

    def __init__(self, known_hosts: str):
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key):
        host, port = (hostname[1:].split("]:") + ["22"])[:2] if hostname.startswith("[") else (hostname, "22")
        scan = f"ssh-keyscan -p {port} {host}" if port != "22" else f"ssh-keyscan {host}"
        raise HostKeyError(
            f"{hostname}: unknown host key ({_fingerprint(key)}), not in {self.known_hosts}. "
            f"Check the fingerprint on the node (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), "
            f"then add it: `{scan} >> {self.known_hosts}`."
        )


class SshTransport:
    """Commands and files on one node over SSH; ``connect()`` is implicit on first use."""

    def __init__(self, host: str, options: SshOptions):
        self.host = host
        self.options = options
        self._client: Optional[paramiko.SSHClient] = None
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
            self._client = self._open()
            t = self._client.get_transport()
            assert t is not None
            t.set_keepalive(15)
            return t

    def _open(self) -> paramiko.SSHClient:
        o = self.options
        known = o.known_hosts_path
        if not os.path.exists(known):
            raise HostKeyError(
                f"{self.where}: known_hosts file {known} does not exist; create it with the node's "
                f"verified key (`ssh-keyscan -p {o.port} {self.host} >> {known}`) or set ssh.known_hosts"
            )
        client = paramiko.SSHClient()
        client.load_host_keys(known)
        client.set_missing_host_key_policy(_RejectUnknown(known))
        timeout = o.connect_timeout
        try:
            client.connect(
                self.host,
                port=o.port,
                username=o.user,
                key_filename=o.key,
                look_for_keys=o.key is None,
                allow_agent=True,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
            )
        except BaseException as exc:
            client.close()
            raise self._connect_error(exc, known) from None
        return client

    def _connect_error(self, exc: BaseException, known: str) -> BaseException:
        o, where = self.options, self.where
        if isinstance(exc, HostKeyError):
            return exc
        if isinstance(exc, paramiko.BadHostKeyException):
            return HostKeyError(
                f"{where}: host key CHANGED: the node offers {_fingerprint(exc.key)} but {known} has "
                f"{_fingerprint(exc.expected_key)}. If the node was reinstalled, verify the new key, then "
                f"`ssh-keygen -R {self.host} -f {known}` and `ssh-keyscan -p {o.port} {self.host} >> {known}`; "
                f"otherwise someone may be intercepting the connection."
            )
        if isinstance(exc, paramiko.PasswordRequiredException):
            return TransportError(
                f"{where}: key {o.key} is encrypted; load it into ssh-agent (ssh-add {o.key})"
            )
        if isinstance(exc, paramiko.AuthenticationException):
            how = f"key {o.key}" if o.key else "ssh-agent and the default keys in ~/.ssh"
            return TransportError(
                f"{where}: authentication failed for user {o.user!r} with {how} (passwords are never used). "
                f"Check ssh.user and that the public key is in ~{o.user}/.ssh/authorized_keys on the node."
            )
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return TransportError(
                f"{where}: no answer within {o.connect_timeout:g}s; check the address, routing and firewall, "
                f"and that the node is up (ssh.connect_timeout raises the limit)."
            )
        if isinstance(exc, socket.gaierror):
            return TransportError(f"{where}: cannot resolve host name {self.host!r}: {exc.strerror}")
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
            first = next(iter(exc.errors.values()), None)
            reason = getattr(first, "strerror", None) or "connection refused"
            return TransportError(
                f"{where}: {reason.lower()}; check the address and port and that sshd runs on the node."
            )
        if isinstance(exc, FileNotFoundError):
            return TransportError(f"{where}: SSH key file {exc.filename} not found; check ssh.key")
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc) or type(exc).__name__
            return TransportError(f"{where}: unreachable ({reason}); check the address and the network.")
        if isinstance(exc, paramiko.SSHException):
            return TransportError(f"{where}: SSH handshake failed ({exc}); is an SSH server listening there?")
        return exc

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
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
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
        self._client, self._sftp = None, None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __repr__(self) -> str:
        return f"SshTransport({self.where!r})"


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
