"""SshOptions: the SSH settings a transport needs, read from the inventory's SshSettings (or alike)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class SshOptions:
    """User, port, key (None: agent and default keys), known_hosts (None: ~/.ssh/known_hosts), timeout
    (per hop), jump host chain (``[user@]host[:port]``, first hop first), an OpenSSH config file to
    apply, and the names of the settings written explicitly (they win over that config)."""

    user: str = "root"
    port: int = 22
    key: Optional[str] = None
    known_hosts: Optional[str] = None
    connect_timeout: float = 10.0
    proxy_jump: tuple[str, ...] = ()
    config: Optional[str] = None
    written: tuple[str, ...] = ()

    @property
    def known_hosts_path(self) -> str:
        return os.path.expanduser(self.known_hosts or "~/.ssh/known_hosts")

    @classmethod
    def of(cls, settings: Any) -> SshOptions:
        """From any object with the SshSettings fields (the inventory's dataclass)."""
        if isinstance(settings, SshOptions):
            return settings
        key, config = getattr(settings, "key", None), getattr(settings, "config", None)
        return cls(
            user=getattr(settings, "user", "root"),
            port=int(getattr(settings, "port", 22)),
            key=os.path.expanduser(key) if key else None,
            known_hosts=getattr(settings, "known_hosts", None),
            connect_timeout=float(getattr(settings, "connect_timeout", 10.0)),
            proxy_jump=tuple(getattr(settings, "proxy_jump", ()) or ()),
            config=os.path.expanduser(config) if config else None,
            written=tuple(getattr(settings, "written", ()) or ()),
        )
