"""Jump host specs as OpenSSH writes them (``-J``, ``ProxyJump``): ``[user@]host[:port]``, comma-separated."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Optional

_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})")


@dataclass(frozen=True)
class JumpSpec:
    """One jump host as written: ``user``/``port`` None mean "the node's ssh settings"."""

    host: str
    user: Optional[str] = None
    port: Optional[int] = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        return f"{user}{host}" + (f":{self.port}" if self.port else "")


def parse_jump(spec: str) -> JumpSpec:
    """``[user@]host[:port]`` (IPv6 as ``[addr]:port``); ValueError says what is wrong."""
    text = spec.strip()
    if text.startswith("ssh://"):
        text = text[len("ssh://") :]
    user, at, rest = text.rpartition("@")
    if at and not user:
        raise ValueError(f"{spec!r}: empty user before '@'")
    port_text = None
    if rest.startswith("["):
        host, close, tail = rest[1:].partition("]")
        if not close or (tail and not tail.startswith(":")):
            raise ValueError(f"{spec!r}: write an IPv6 address as [addr] or [addr]:port")
        port_text = tail[1:] if tail else None
    elif rest.count(":") == 1:
        host, port_text = rest.split(":")
    else:
        host = rest
    if not _valid_host(host):
        raise ValueError(f"{spec!r}: {host!r} is not an address or host name")
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"{spec!r}: port {port_text!r} is not in 1..65535")
        port = int(port_text)
    return JumpSpec(host, user or None, port)


def parse_chain(text: str) -> tuple[JumpSpec, ...]:
    """A comma-separated chain (first hop first); ``none`` or empty is no jump host."""
    if text.strip().lower() in ("", "none"):
        return ()
    return tuple(parse_jump(part) for part in text.split(","))


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_NAME.fullmatch(host))
