"""The OpenSSH client command for bulk streams: same route (jump hosts), user, port, key and
known_hosts as the paramiko connection, host keys checked at every hop, never a prompt. Its ciphers run in C at several times paramiko's speed.
"""

from __future__ import annotations

import shlex
import shutil
from functools import lru_cache
from typing import Optional, Sequence

from orchestrator.transport.route import Hop, route
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
    """``ssh ... host command`` (``command`` already quoted for the remote shell), or None without ``ssh``.

    The route (jump hosts, ssh config) is resolved here as for paramiko, and OpenSSH gets it explicitly:
    ``-F /dev/null`` (no config of its own), the inventory's known_hosts only, and each jump host as a
    nested ProxyCommand ``ssh ... -W next:port jump`` with the same checks (``-J`` would drop them).
    """
    if shutil.which("ssh") is None:
        return None
    hops = route(host, options)
    argv = hop_argv(hops, len(hops) - 1, options)
    return argv + ["--", hops[-1].host, command]


def hop_argv(hops: Sequence[Hop], index: int, options: SshOptions) -> list[str]:
    """The ``ssh`` options reaching ``hops[index]`` (through the hops before it), without the host."""
    hop, o = hops[index], options
    argv = ["ssh", "-T", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f'UserKnownHostsFile="{o.known_hosts_path}"', "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"ConnectTimeout={max(1, round(o.connect_timeout))}",
            "-o", "ServerAliveInterval=15", "-p", str(hop.port), "-l", hop.user]  # fmt: skip
    if cpu_has_aes():
        argv += ["-o", f"Ciphers={_AES_FIRST}"]
    if hop.key:
        argv += ["-i", hop.key, "-o", "IdentitiesOnly=yes"]
    if index > 0:
        argv += ["-o", f"ProxyCommand={proxy_command(hops, index - 1, options)}"]
    return argv


def proxy_command(hops: Sequence[Hop], index: int, options: SshOptions) -> str:
    """The ProxyCommand value that runs ``ssh -W`` on ``hops[index]`` to the next hop. It is a shell line
    (each word quoted) in which ``%`` is doubled: ssh expands ``%`` tokens in it before running it."""
    nxt = hops[index + 1]
    target = f"[{nxt.host}]:{nxt.port}" if ":" in nxt.host else f"{nxt.host}:{nxt.port}"
    words = hop_argv(hops, index, options) + ["-W", target, "--", hops[index].host]
    return shlex.join(words).replace("%", "%%")
