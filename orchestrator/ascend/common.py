"""Shared helpers of the Ascend tool parsers: the parse error and `Key : value` splitting."""

from __future__ import annotations

from typing import Optional

try:
    from orchestrator.errors import OrchestrateError
except ImportError:  # on a node: inside the agent zipapp, without the rest of the orchestrator package

    class OrchestrateError(Exception):  # type: ignore[no-redef]
        """Stands in for orchestrator.errors.OrchestrateError."""

        exit_code = 1


class AscendParseError(OrchestrateError, ValueError):
    """Output of an Ascend tool that we could not understand; names the tool, line and text."""

    def __init__(self, tool: str, message: str, line_no: Optional[int] = None, line: str = ""):
        self.tool, self.line_no, self.line = tool, line_no, line
        where = f"{tool} output" if line_no is None else f"{tool} output line {line_no}"
        text = f"{where}: {message}"
        if line:
            text += f": {line.rstrip()!r}"
        super().__init__(text)


class AscendToolError(AscendParseError):
    """The tool itself reported an error (dcmi init failed, no IP preset, busy, ...)."""


class AscendToolBusy(AscendToolError):
    """`hccn_tool is busy, please try again` (or npu-smi run concurrently): retry later."""


ERROR_MARKERS = ("failed", "error", "not support", "invalid", "busy", "cannot", "can not")


def error_lines(text: str) -> list[str]:
    """Lines that read like a tool error message (case-insensitive markers, warnings excluded)."""
    found = []
    for line in text.splitlines():
        low = line.strip().lower()
        if low and not low.startswith("[warning]") and any(m in low for m in ERROR_MARKERS):
            found.append(line.strip())
    return found


def raise_tool_error(tool: str, text: str, what: str) -> None:
    """Raise :class:`AscendToolError` (or Busy) quoting the tool's own message, if it printed one."""
    errors = error_lines(text)
    if errors:
        cls = AscendToolBusy if any("busy" in e.lower() for e in errors) else AscendToolError
        raise cls(tool, f"{what}: the tool reported: {' / '.join(errors)}")


def key_values(text: str) -> list[tuple[str, str]]:
    """`Key : value` lines (tab-indented, padded keys, trailing spaces) split on the first colon."""
    pairs = []
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        key = key.strip()
        if key:
            pairs.append((key, value.strip()))
    return pairs
