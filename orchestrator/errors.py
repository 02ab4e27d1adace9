"""The one exception root of the orchestrator.

Every error a user can cause or meet derives from :class:`OrchestrateError` and from the builtin it
resembles, so library callers can catch either. ``cli.main`` is the single place that turns these into
what the user reads and into exit codes (see ``EXIT_CODES``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where it is, what is wrong, and how to fix it."""

    file: str
    field: str
    message: str
    fix: str = ""
    line: Optional[int] = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.field}: {self.message}"
        return f"{text} (fix: {self.fix})" if self.fix else text


class OrchestrateError(Exception):
    """Root of every error the orchestrator raises on purpose."""

    exit_code = 1


class InputError(OrchestrateError, ValueError):
    """Bad user input (inventory, options, files), found before any node is touched."""

    exit_code = 2

    def __init__(self, problems: Sequence[Problem] | str):
        if isinstance(problems, str):
            self.problems: tuple[Problem, ...] = ()
            super().__init__(problems)
        else:
            self.problems = tuple(problems)
            lines = [f"{len(self.problems)} problem(s):"] + [f"  - {p}" for p in self.problems]
            super().__init__("\n".join(lines))


class PlanError(OrchestrateError, ValueError):
    """The inputs are well formed but no valid plan exists (layout does not fit, rules broken)."""

    exit_code = 3


class TransportError(OrchestrateError, ConnectionError):
    """A node could not be reached, authenticated or talked to."""

    exit_code = 4


class HostKeyError(TransportError):
    """A node's host key is unknown or differs from known_hosts."""


class RemoteCommandError(OrchestrateError, RuntimeError):
    """A command on a node exited non-zero: carries the command, exit code and output tail."""

    exit_code = 5

    def __init__(self, host: str, command: str, exit_code: int, stdout: str = "", stderr: str = ""):
        self.host, self.command, self.code = host, command, exit_code
        self.stdout, self.stderr = stdout, stderr
        tail = "\n".join((stderr or stdout).strip().splitlines()[-10:])
        super().__init__(f"{host}: `{command}` exited {exit_code}" + (f"\n{tail}" if tail else ""))


class JobFailed(OrchestrateError, RuntimeError):
    """A job ended in failure; the message names the root-cause rank."""

    exit_code = 6


class SimError(OrchestrateError, RuntimeError):
    """The simulated cluster could not be built, inspected or removed."""

    exit_code = 7


class NotRoot(SimError, PermissionError):
    """An operation needs root (network namespaces) and we are not root."""
