"""Run several small shell steps on a node in one round trip and split their outputs apart.

Each step runs in its own subshell (stderr merged into stdout) between marker lines that carry a
random nonce and the step's exit code, so one SSH command answers many questions, in order, and never
two at once (npu-smi must not run concurrently on one node).
"""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass
from typing import Mapping, Sequence

from orchestrator.errors import TransportError
from orchestrator.transport.base import Transport

NPU_SMI_PATHS = ("/usr/local/sbin/npu-smi", "/usr/local/bin/npu-smi")
HCCN_TOOL_PATHS = ("/usr/local/Ascend/driver/tools/hccn_tool",)
C_LOCALE = {"LC_ALL": "C", "LANG": "C"}


@dataclass(frozen=True)
class StepOutput:
    """What one step printed (stdout and stderr together) and its exit code."""

    exit_code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def find_tool_script(name: str, fallbacks: Sequence[str]) -> str:
    """Shell that prints the path of ``name`` (PATH first, then the fixed places) or exits 1."""
    places = " ".join(shlex.quote(p) for p in fallbacks)
    return (
        f"command -v {shlex.quote(name)} || {{ for p in {places}; do "
        f'if [ -x "$p" ]; then echo "$p"; exit 0; fi; done; exit 1; }}'
    )


def tool_command(path: str, *args: str) -> str:
    """``path args...`` quoted for the shell."""
    return " ".join(shlex.quote(a) for a in (path, *args))


def batch_script(steps: Mapping[str, str], nonce: str) -> str:
    """The one shell script that runs ``steps`` (name -> shell) in order, framed by markers."""
    lines = []
    for name, body in steps.items():
        lines.append(f"echo {shlex.quote(f'@@{nonce}@@ begin {name}')}")
        lines.append(f"( {body}\n) </dev/null 2>&1")
        lines.append(f'echo "@@{nonce}@@ end $?"')
    return "\n".join(lines) + "\n"


_MARK = re.compile(r"^@@(?P<nonce>[0-9a-f]+)@@ (?P<what>begin|end) (?P<arg>\S+)$")


def split_output(text: str, nonce: str) -> dict[str, StepOutput]:
    """Parse the framed output of :func:`batch_script` back into steps (missing end: exit 255)."""
    steps: dict[str, StepOutput] = {}
    name, buf = None, []
    for line in text.splitlines():
        mark = _MARK.match(line)
        if not mark or mark["nonce"] != nonce:
            if name is not None:
                buf.append(line)
            continue
        if mark["what"] == "begin":
            name, buf = mark["arg"], []
        elif name is not None:
            steps[name] = StepOutput(int(mark["arg"]), "\n".join(buf) + ("\n" if buf else ""))
            name = None
    if name is not None:
        steps[name] = StepOutput(255, "\n".join(buf))
    return steps


def run_steps(
    transport: Transport, steps: Mapping[str, str], *, timeout: float = 60
) -> dict[str, StepOutput]:
    """Run ``steps`` on the node in one command with the C locale; every step's output by name."""
    if not steps:
        return {}
    nonce = secrets.token_hex(8)
    result = transport.run(
        ["sh", "-c", batch_script(steps, nonce)], env=C_LOCALE, timeout=timeout, check=False
    )
    found = split_output(result.stdout, nonce)
    if not found:
        tail = (result.stderr or result.stdout).strip()[-300:]
        raise TransportError(f"{transport.host}: probe script failed (exit {result.exit_code}): {tail}")
    return found
