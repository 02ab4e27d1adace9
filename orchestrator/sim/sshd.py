"""Keys and configuration of the nodes' OpenSSH servers: key-only logins, one host key per node."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.sim.netns import run

SSHD = "/usr/sbin/sshd"


def keygen(path: Path, comment: str) -> Path:
    """A fresh ed25519 key pair at ``path`` (0600) and ``path.pub``; returns the public key file."""
    for p in (path, path.with_name(path.name + ".pub")):
        p.unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    path.chmod(0o600)
    return path.with_name(path.name + ".pub")


def host_key_line(pub: Path, address: str, hostname: str) -> str:
    """A known_hosts line naming the node by address and hostname."""
    kind, key = pub.read_text().split()[:2]
    return f"{address},{hostname} {kind} {key}\n"


def write_private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def sshd_config(address: str, host_key: Path, keys_dir: str, pid_file: Path) -> str:
    """The node's sshd_config: listens on the node's address only; public keys only; no PAM. A user's
    keys are in ``~/.ssh/authorized_keys`` (the job user) or ``<keys_dir>/<user>`` (root, whose home
    on a node is empty)."""
    return f"""# sshd of a simulated node (orchestrate sim)
ListenAddress {address}
Port 22
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile .ssh/authorized_keys {keys_dir}/%u
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes yes
UseDNS no
MaxStartups 64:30:128
MaxSessions 64
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
"""
