"""What every transport shares: the run result, the interface, and commands as data.

Commands are argv lists; ``build_command`` turns one into the single string an SSH server hands to the
remote shell, quoting every argument with ``shlex.quote`` and passing the environment as
``env K=V ... argv`` (never relying on the server's AcceptEnv). ``display_command`` is the same string
with the values of secret-looking keys masked; it is what logs and errors show.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional, Protocol, Sequence, Union, runtime_checkable

from orchestrator.errors import RemoteCommandError
from orchestrator.transport.stream import Stream

Env = Optional[Union[Mapping[str, str], Sequence[tuple[str, str]]]]

MASK = "***"
_SECRET_KEY = re.compile(r"SECRET|TOKEN|PASSW|PASSPHRASE|CREDENTIAL|API_?KEY|ACCESS_?KEY|PRIVATE|AUTH", re.I)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class RunResult:
    """One finished command on one host; ``command`` is the masked display form."""

    host: str
    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@runtime_checkable
class Transport(Protocol):
    """Runs commands and moves files on one node (over SSH, or on this machine)."""

    host: str

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60,
        env: Env = None,
        stdin: Optional[bytes] = None,
        check: bool = True,
        cwd: Optional[str] = None,
    ) -> RunResult: ...

    def open_stream(
        self, argv: Sequence[str], *, env: Env = None, cwd: Optional[str] = None, bulk: bool = False
    ) -> Stream:
        """Start ``argv`` and return its Stream (stdin written and stdout read while it runs).

        ``bulk``: the stream carries much data; over SSH it then goes through the OpenSSH client when
        there is one (same user, key and known_hosts) rather than the shared paramiko connection.
        """
        ...

    def put(self, local: Path, remote: str, *, mode: int = 0o644) -> None: ...

    def put_bytes(self, data: bytes, remote: str, *, mode: int = 0o644) -> None: ...

    def get(self, remote: str, local: Path) -> None: ...

    def close(self) -> None: ...


def is_secret_key(key: str) -> bool:
    """True for environment keys whose values must never be shown (tokens, passwords, keys)."""
    return bool(_SECRET_KEY.search(key))


def env_pairs(env: Env) -> list[tuple[str, str]]:
    """The environment as validated (key, value) pairs, in the given order."""
    if not env:
        return []
    pairs = list(env.items()) if isinstance(env, Mapping) else [tuple(p) for p in env]
    for key, value in pairs:
        if not _ENV_NAME.match(key):
            raise ValueError(f"invalid environment variable name {key!r}")
        if not isinstance(value, str):
            raise TypeError(f"environment value of {key} must be a string, got {type(value).__name__}")
    return pairs  # type: ignore[return-value]


def secret_values(env: Env) -> list[str]:
    """Values of the secret-looking keys of ``env`` (to mask wherever they appear)."""
    return [v for k, v in env_pairs(env) if is_secret_key(k) and v]


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret (longest first) replaced by ``***``."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text


def _render(argv: Sequence[str], env: Env, cwd: Optional[str], masked: bool) -> str:
    if not argv:
        raise ValueError("empty command")
    words = [shlex.quote(str(a)) for a in argv]
    pairs = env_pairs(env)
    if pairs:
        assigns = [f"{k}={MASK}" if masked and is_secret_key(k) else f"{k}={v}" for k, v in pairs]
        words = ["env", "--"] + [shlex.quote(a) for a in assigns] + words
    command = " ".join(words)
    return f"cd {shlex.quote(cwd)} && {command}" if cwd else command


def build_command(argv: Sequence[str], env: Env = None, cwd: Optional[str] = None) -> str:
    """The shell string that runs ``argv`` exactly (every word quoted), with ``env`` and ``cwd``."""
    return _render(argv, env, cwd, masked=False)


def display_command(argv: Sequence[str], env: Env = None, cwd: Optional[str] = None) -> str:
    """``build_command`` with the values of secret-looking environment keys masked."""
    return _render(argv, env, cwd, masked=True)


def checked(result: RunResult, check: bool, secrets: Iterable[str] = ()) -> RunResult:
    """``result``, or RemoteCommandError (output masked) when ``check`` and it exited non-zero."""
    if check and result.exit_code != 0:
        secrets = list(secrets)
        raise RemoteCommandError(
            result.host,
            result.command,
            result.exit_code,
            mask(result.stdout, secrets),
            mask(result.stderr, secrets),
        )
    return result
