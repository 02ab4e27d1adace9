"""The OpenSSH client command for bulk streams: same user, port, key and known_hosts as the paramiko
connection, host keys checked, never a prompt. Its ciphers run in C at several times paramiko's speed.
"""

from __future__ import annotations

import shutil
from functools import lru_cache
from typing import Optional

from orchestrator.transport.settings import SshOptions

# AES-GCM first where the CPU has AES instructions (x86 "aes", ARMv8 "aes" feature): there it costs a
# fraction of chacha20-poly1305 (OpenSSH's default first choice). Every cipher is one OpenSSH offers by default.
_AES_FIRST = (
    "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr"
)


@lru_cache(maxsize=1)
def cpu_has_aes() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return any(
                line.startswith(("flags", "Features")) and "aes" in line.split(":", 1)[-1].split()
                for line in f
            )
    except OSError:
        return False


def openssh_argv(host: str, options: SshOptions, command: str) -> Optional[list[str]]:
    """``ssh ... host command`` (``command`` already quoted for the remote shell), or None without ``ssh``."""
    if shutil.which("ssh") is None:
        return None
    o = options
    argv = ["ssh", "-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f'UserKnownHostsFile="{o.known_hosts_path}"',
            "-o", f"ConnectTimeout={max(1, round(o.connect_timeout))}",
            "-o", "ServerAliveInterval=15", "-p", str(o.port), "-l", o.user]  # fmt: skip
    if cpu_has_aes():
        argv += ["-o", f"Ciphers={_AES_FIRST}"]
    if o.key:
        argv += ["-i", o.key, "-o", "IdentitiesOnly=yes"]
    return argv + ["--", host, command]
