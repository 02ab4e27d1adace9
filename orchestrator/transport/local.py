"""LocalTransport: the Transport interface on this machine, for ``local: true`` nodes (no SSH, no shell)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Optional, Sequence

from orchestrator.errors import TransportError
from orchestrator.transport.base import (
    Env,
    RunResult,
    checked,
    display_command,
    env_pairs,
    mask,
    secret_values,
)
from orchestrator.transport.files import write_atomic
from orchestrator.transport.stream import EndedStream, ProcessStream, Stream


class LocalTransport:
    """Runs argv with subprocess (no shell) and copies files atomically, on the controller itself."""

    def __init__(self, host: str = "localhost"):
        self.host = host

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
        shown = display_command(argv, env, cwd)
        secrets = secret_values(env)
        full_env = {**os.environ, **dict(env_pairs(env))}
        start = time.monotonic()
        if cwd and not os.path.isdir(cwd):
            err = f"cd: {cwd}: No such file or directory\n".encode()
            return checked(RunResult(self.host, shown, 1, "", err.decode(), 0.0), check, secrets)
        try:
            proc = subprocess.run(
                [str(a) for a in argv],
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=timeout,
                env=full_env,
                cwd=cwd,
            )
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired:
            raise TransportError(
                f"{self.host}: `{mask(shown, secrets)}` timed out after {timeout:g}s"
            ) from None
        except FileNotFoundError as exc:
            # The same outcome as a remote shell: exit 127, "not found" on stderr.
            missing = exc.filename if exc.filename else argv[0]
            code, out, err = 127, b"", f"{missing}: not found\n".encode()
        result = RunResult(
            host=self.host,
            command=shown,
            exit_code=code if code >= 0 else 128 - code,
            stdout=out.decode(errors="replace"),
            stderr=err.decode(errors="replace"),
            duration_s=time.monotonic() - start,
        )
        return checked(result, check, secrets)

    def open_stream(
        self, argv: Sequence[str], *, env: Env = None, cwd: Optional[str] = None, bulk: bool = False
    ) -> Stream:
        """``argv`` as a child process (no shell); a missing program or folder ends it like a shell would."""
        shown = mask(display_command(argv, env, cwd), secret_values(env))
        if cwd and not os.path.isdir(cwd):
            return EndedStream(self.host, shown, 1, f"cd: {cwd}: No such file or directory\n".encode())
        full_env = {**os.environ, **dict(env_pairs(env))}
        try:
            return ProcessStream(self.host, [str(a) for a in argv], shown, env=full_env, cwd=cwd)
        except FileNotFoundError as exc:
            return EndedStream(self.host, shown, 127, f"{exc.filename or argv[0]}: not found\n".encode())

    def put(self, local: Path, remote: str, *, mode: int = 0o644) -> None:
        with open(local, "rb") as src:
            write_atomic(Path(remote), lambda dst: shutil.copyfileobj(src, dst), mode)

    def put_bytes(self, data: bytes, remote: str, *, mode: int = 0o644) -> None:
        write_atomic(Path(remote), lambda dst: dst.write(data), mode)

    def get(self, remote: str, local: Path) -> None:
        try:
            src = open(remote, "rb")
        except OSError as exc:
            raise TransportError(f"{self.host}: cannot read {remote}: {exc.strerror}") from None
        with src:
            write_atomic(Path(local), lambda dst: shutil.copyfileobj(src, dst), 0o600)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"LocalTransport({self.host!r})"
