"""SshOptions: the SSH settings a transport needs, read from the inventory's SshSettings (or alike)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class SshOptions:
    """User, port, key (None: agent and default keys), known_hosts (None: ~/.ssh/known_hosts), timeout."""

    user: str = "root"
    port: int = 22
    key: Optional[str] = None
    known_hosts: Optional[str] = None
    connect_timeout: float = 10.0

    @property
    def known_hosts_path(self) -> str:
        return os.path.expanduser(self.known_hosts or "~/.ssh/known_hosts")

    @classmethod
    def of(cls, settings: Any) -> SshOptions:
        """From any object with the SshSettings fields (the inventory's dataclass)."""
        if isinstance(settings, SshOptions):
            return settings
        key = getattr(settings, "key", None)
        return cls(
            user=getattr(settings, "user", "root"),
            port=int(getattr(settings, "port", 22)),
            key=os.path.expanduser(key) if key else None,
            known_hosts=getattr(settings, "known_hosts", None),
            connect_timeout=float(getattr(settings, "connect_timeout", 10.0)),
        )
