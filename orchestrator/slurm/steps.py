"""StepTransport: a Transport to one allocated node whose every command is a Slurm job step.

Commands go through the login host (``login``: this machine, or an SSH transport to the cluster's login
node) as ``srun --jobid=J --overlap --nodelist=NODE -- /bin/sh -c '<quoted command>'``: nodes are
reached only through the scheduler, inside the job's allocation, as sites without SSH to compute nodes
require. Files are written atomically through stdin (parent folders made, temporary name, chmod, rename).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional, Sequence

from orchestrator.slurm import commands
from orchestrator.transport.base import Env, RunResult, Transport, build_command, checked, display_command
from orchestrator.transport.files import write_atomic
from orchestrator.transport.stream import Stream

_PUT = 'set -e; umask 077; mkdir -p "$(dirname "$1")"; t=$(mktemp "$1.XXXXXX"); cat > "$t"; chmod "$2" "$t"; mv -f "$t" "$1"'


class StepTransport:
    """Runs commands on ``node`` (``host`` as the inventory names it) as steps of Slurm job ``slurm_job``."""

    def __init__(self, login: Transport, slurm_job: str, node: str, host: Optional[str] = None):
        self.login = login
        self.slurm_job = slurm_job
        self.node = node
        self.host = host or node

    def _step(self, argv: Sequence[str], env: Env, cwd: Optional[str]) -> list[str]:
        return commands.step_on_node(self.slurm_job, self.node, build_command(argv, env, cwd))

    def run(self, argv: Sequence[str], *, timeout: float = 60, env: Env = None, stdin: Optional[bytes] = None,
            check: bool = True, cwd: Optional[str] = None) -> RunResult:  # fmt: skip
        r = self.login.run(self._step(argv, env, cwd), timeout=timeout, stdin=stdin, check=False)
        result = RunResult(self.host, display_command(argv, env, cwd), r.exit_code, r.stdout, r.stderr,
                           r.duration_s)  # fmt: skip
        return checked(result, check)

    def open_stream(self, argv: Sequence[str], *, env: Env = None, cwd: Optional[str] = None,
                    bulk: bool = False) -> Stream:  # fmt: skip
        return self.login.open_stream(self._step(argv, env, cwd), bulk=bulk)

    def put_bytes(self, data: bytes, remote: str, *, mode: int = 0o644) -> None:
        self.run(["/bin/sh", "-c", _PUT, "put", remote, f"{mode:o}"], stdin=data, timeout=120)

    def put(self, local: Path, remote: str, *, mode: int = 0o644) -> None:
        self.put_bytes(Path(local).read_bytes(), remote, mode=mode)

    def get(self, remote: str, local: Path) -> None:
        with self.open_stream(["cat", remote]) as s:
            data = s.read(-1, timeout=300)
            end = s.wait(timeout=60)
        checked(RunResult(self.host, f"cat {shlex.quote(remote)}", end.exit_code, "",
                          end.stderr.decode(errors="replace"), 0.0), True)  # fmt: skip
        write_atomic(Path(local), lambda dst: dst.write(data), 0o600)

    def close(self) -> None:
        self.login.close()

    def __repr__(self) -> str:
        return f"StepTransport({self.host!r} in Slurm job {self.slurm_job})"
