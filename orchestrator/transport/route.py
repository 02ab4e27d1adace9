"""The hops to a node: its jump hosts then the node itself, each with the address, port, user and key
to use there. Both transports (paramiko and the OpenSSH client) connect along the same route.

Without ``config`` a hop is its jump spec with the node's user/port where the spec names none, and
the node's key. With an OpenSSH ``config`` file, each name (the node and every jump host) is looked up
like ``ssh`` does: HostName, User, Port, IdentityFile and ProxyJump apply unless the inventory wrote
that setting (a jump spec's own user/port win too). ProxyCommand is refused (use ProxyJump).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import paramiko

from orchestrator.errors import TransportError
from orchestrator.transport.jump import JumpSpec, parse_chain, parse_jump
from orchestrator.transport.settings import SshOptions

MAX_HOPS = 8


@dataclass(frozen=True)
class Hop:
    """Where one SSH connection of the route goes; ``name`` is the host as written (an alias)."""

    name: str
    host: str
    port: int
    user: str
    key: Optional[str]

    @property
    def where(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


def route(host: str, options: SshOptions) -> tuple[Hop, ...]:
    """The hops to ``host``, first jump host first, ``host`` itself last."""
    config = _config(options.config) if options.config else None
    target = _lookup(config, host, options)
    jumps = tuple(parse_jump(j) for j in options.proxy_jump) if "proxy_jump" in options.written else None
    if jumps is None:
        jumps = _config_jumps(config, host) if config is not None else ()
    return (*_through(config, jumps, options, depth=1), target)


def describe(hops: tuple[Hop, ...], index: int) -> str:
    """How errors name a hop: the node alone when direct, else ``hop 2/2 (user@host:port)``."""
    if len(hops) == 1:
        return hops[0].where
    role = "jump host" if index < len(hops) - 1 else "node"
    return f"{hops[-1].name} via {' -> '.join(h.name for h in hops[:-1])}: hop {index + 1}/{len(hops)} ({role} {hops[index].where})"


def _through(config, jumps: tuple[JumpSpec, ...], options: SshOptions, depth: int) -> list[Hop]:
    """The hops of a jump chain, each preceded by its own ProxyJump from the config (as OpenSSH does)."""
    if depth > MAX_HOPS:
        raise TransportError(
            f"more than {MAX_HOPS} nested jump hosts: is there a ProxyJump loop in {options.config}?"
        )
    hops: list[Hop] = []
    for i, spec in enumerate(jumps):
        if (
            i == 0 and config is not None
        ):  # only the first hop's own ProxyJump applies (later ones go through it)
            hops += _through(config, _config_jumps(config, spec.host), options, depth + 1)
        hop = _lookup(config, spec.host, options, spec)
        hops.append(hop)
    return hops


def _lookup(
    config: Optional[paramiko.SSHConfig], name: str, o: SshOptions, spec: Optional[JumpSpec] = None
) -> Hop:
    entry = config.lookup(name) if config is not None else {}
    if "proxycommand" in entry:
        raise TransportError(
            f"{o.config}: Host {name} uses ProxyCommand, which orchestrate does not run; write ProxyJump instead"
        )

    def pick(key: str, conf_key: str, ours):
        return ours if key in o.written or conf_key not in entry else entry[conf_key]

    user, port, key = pick("user", "user", o.user), pick("port", "port", o.port), o.key
    if "key" not in o.written and entry.get("identityfile"):
        key = os.path.expanduser(entry["identityfile"][0])
    if spec is not None:
        user, port = spec.user or user, spec.port or port
    try:
        port = int(port)
    except ValueError:
        raise TransportError(f"{o.config}: Host {name}: Port {port!r} is not a number") from None
    return Hop(name, entry.get("hostname", name), port, user, key)


def _config_jumps(config: paramiko.SSHConfig, name: str) -> tuple[JumpSpec, ...]:
    value = config.lookup(name).get("proxyjump", "")
    try:
        return parse_chain(value)
    except ValueError as exc:
        raise TransportError(f"ProxyJump of Host {name}: {exc}") from None


@lru_cache(maxsize=8)
def _read_config(path: str, mtime: float) -> paramiko.SSHConfig:
    try:
        return paramiko.SSHConfig.from_path(path)
    except OSError as exc:
        raise TransportError(
            f"cannot read the OpenSSH config {path}: {exc.strerror or exc}; check ssh.config"
        ) from None


def _config(path: str) -> paramiko.SSHConfig:
    try:
        mtime = os.stat(path).st_mtime
    except OSError as exc:
        raise TransportError(
            f"cannot read the OpenSSH config {path}: {exc.strerror or exc}; check ssh.config"
        ) from None
    return _read_config(path, mtime)
