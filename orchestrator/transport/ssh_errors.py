"""What went wrong connecting one hop, said so the user can fix it: unknown or changed host keys (never
accepted), authentication, timeouts, refused connections; each error names the hop."""

from __future__ import annotations

import socket

import paramiko

from orchestrator.errors import HostKeyError, TransportError
from orchestrator.transport.route import Hop, describe
from orchestrator.transport.settings import SshOptions


def fingerprint(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


class RejectUnknown(paramiko.MissingHostKeyPolicy):
    """Refuse a host whose key is not in known_hosts, telling how to add it after checking it."""

    def __init__(self, known_hosts: str, where: str = "", behind: bool = False):
        self.known_hosts, self.where, self.behind = known_hosts, where, behind

    def missing_host_key(self, client, hostname, key):
        host, port = (hostname[1:].split("]:") + ["22"])[:2] if hostname.startswith("[") else (hostname, "22")
        scan = f"ssh-keyscan -p {port} {host}" if port != "22" else f"ssh-keyscan {host}"
        if self.behind:
            scan += " (run it on the jump host before it: it is reachable only from there)"
        raise HostKeyError(
            f"{self.where or hostname}: unknown host key ({fingerprint(key)}) for {hostname}, not in "
            f"{self.known_hosts}. Check the fingerprint on that host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), "
            f"then add it: `{scan} >> {self.known_hosts}`."
        )


def known_name(hop) -> str:
    return hop.host if hop.port == 22 else f"[{hop.host}]:{hop.port}"


def connect_error(
    exc: BaseException, o: SshOptions, known: str, hops: tuple[Hop, ...], i: int
) -> BaseException:
    """The error to raise for ``exc`` at hop ``i``: what failed there and what to check."""
    hop, where = hops[i], describe(hops, i)
    scan = f"ssh-keyscan -p {hop.port} {hop.host}"
    if i > 0:
        scan += f" (run on {hops[i - 1].where}, the hop before it)"
    if isinstance(exc, (HostKeyError, TransportError)):
        return exc
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyError(
            f"{where}: host key CHANGED: it offers {fingerprint(exc.key)} but {known} has "
            f"{fingerprint(exc.expected_key)}. If the host was reinstalled, verify the new key, then "
            f"`ssh-keygen -R {known_name(hop)} -f {known}` and `{scan} >> {known}`; "
            f"otherwise someone may be intercepting the connection."
        )
    if isinstance(exc, paramiko.PasswordRequiredException):
        return TransportError(
            f"{where}: key {hop.key} is encrypted; load it into ssh-agent (ssh-add {hop.key})"
        )
    if isinstance(exc, paramiko.AuthenticationException):
        how = f"key {hop.key}" if hop.key else "ssh-agent and the default keys in ~/.ssh"
        return TransportError(
            f"{where}: authentication failed for user {hop.user!r} with {how} (passwords are never used). "
            f"Check ssh.user and that the public key is in ~{hop.user}/.ssh/authorized_keys there."
        )
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return TransportError(
            f"{where}: no answer within {o.connect_timeout:g}s; check the address, routing and firewall, "
            f"and that the host is up (ssh.connect_timeout raises the limit)."
        )
    if isinstance(exc, socket.gaierror):
        return TransportError(f"{where}: cannot resolve host name {hop.host!r}: {exc.strerror}")
    if isinstance(exc, (paramiko.ssh_exception.NoValidConnectionsError, ConnectionRefusedError)):
        first = next(iter(getattr(exc, "errors", {}).values()), exc)
        reason = getattr(first, "strerror", None) or "connection refused"
        return TransportError(
            f"{where}: {reason.lower()}; check the address and port and that sshd runs there."
        )
    if isinstance(exc, FileNotFoundError):
        return TransportError(f"{where}: SSH key file {exc.filename} not found; check ssh.key")
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        return TransportError(f"{where}: unreachable ({reason}); check the address and the network.")
    if isinstance(exc, (paramiko.SSHException, EOFError)):
        return TransportError(f"{where}: SSH handshake failed ({exc}); is an SSH server listening there?")
    return exc
