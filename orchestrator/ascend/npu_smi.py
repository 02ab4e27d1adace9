"""Parse `npu-smi info`: the NPU table (every known layout) and the process table.

Layouts (see docs/ascend-tool-outputs.md): 86 columns (20.x, no hugepages), 93 columns
(21.0.4 to 23.0.rc1), 98 columns (23.0.rc2 to 25.x), 116 columns (26.0.x, an extra "Process id in
container" cell) and Atlas A3 (two chips per NPU, each with its own first row; the second chip's
power is "-"). Rows are split on ``|`` and recognised by their shape, never by header text (headers
are localized on Chinese installs) and never by column offsets (widths differ per version):

- row 1 of a chip: ``<npu> <name> | <health> | <power> <temp> [<used> / <total>]``
- row 2 of a chip: ``<chip> [<phy id>] | <bus id> | <aicore> [<used> / <total>] <used> / <total>``
- process row:     ``<npu> <chip> | <pid> [| <pid in container>] | <name or blank> | <memory>``
- idle row:        ``No running processes found in NPU <N>`` (one cell ending in the card id)

Lines outside the table (errors and warnings npu-smi prints on stdout) are kept in ``messages``.
The other queries (``-l``, ``-m``, ``-t board``, ``-v``) live in :mod:`.npu_smi_queries`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

# Standard library only: the node agent's zipapp ships this package (orchestrator.agent.bundle) and
# runs it on the node's Python 3.9+.
from .common import AscendParseError, raise_tool_error
from .npu_smi_queries import (  # noqa: F401  (re-exported: one import site)
    BoardInfo,
    ChipMapping,
    SpodInfo,
    parse_npu_smi_board,
    parse_npu_smi_list,
    parse_npu_smi_mapping,
    parse_npu_smi_spod_info,
    parse_npu_smi_version,
)

TOOL = "npu-smi info"
_PAIR = re.compile(r"(\d+)\s*/\s*(\d+)")
_BUS_ID = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]+$")
_ROW1_HEAD = re.compile(r"^(\d+)\s+(\S.*)$")
_ROW2_HEAD = re.compile(r"^(\d+)(?:\s+(\d+))?$")
_PROC_HEAD = re.compile(r"^(\d+)\s+(\d+)$")
_IDLE = re.compile(r"^\D+?\s(\d+)$")
_VERSION = re.compile(r"^npu-smi\s+(\S+)\s+\S*?[:：]\s*(\S+)")


@dataclass(frozen=True)
class NpuChip:
    """One chip of an NPU card (one per card, two on Atlas A3). Usage values in MB; None if absent."""

    chip_id: int
    bus_id: str
    health: str
    power_w: Optional[float]  # None when printed as "-" (A3 second chip)
    temp_c: Optional[int]
    aicore_percent: Optional[int]
    hbm_used_mb: Optional[int]
    hbm_total_mb: Optional[int]
    memory_used_mb: Optional[int] = None  # DDR; "0 / 0" on 910B
    memory_total_mb: Optional[int] = None
    hugepages_used: Optional[int] = None  # pages; absent in the 86-column layout
    hugepages_total: Optional[int] = None
    phy_id: Optional[int] = None  # A3 "Chip Phy-ID"


@dataclass(frozen=True)
class Npu:
    """One NPU card: ``npu_id`` is the card id npu-smi prints (the N of ``-i N``)."""

    npu_id: int
    name: str  # as printed: 910A, 910PremiumA, 910B3, Ascend910, ...
    chips: tuple[NpuChip, ...]

    @property
    def health(self) -> str:
        """ "OK" when every chip is OK, else the first chip health that is not."""
        return next((c.health for c in self.chips if c.health != "OK"), "OK")

    @property
    def hbm_used_mb(self) -> Optional[int]:
        return _sum(c.hbm_used_mb for c in self.chips)

    @property
    def hbm_total_mb(self) -> Optional[int]:
        return _sum(c.hbm_total_mb for c in self.chips)


@dataclass(frozen=True)
class NpuProcess:
    """A process holding an NPU. The same pid may appear under several NPUs; ``name`` may be ""."""

    npu_id: int
    chip_id: int
    pid: int
    name: str
    memory_mb: int
    container_pid: Optional[int] = None  # 26.0.x "Process id in container"


@dataclass(frozen=True)
class NpuSmiInfo:
    """Everything `npu-smi info` printed."""

    npus: tuple[Npu, ...]
    processes: tuple[NpuProcess, ...]
    idle_npus: tuple[int, ...] = ()  # cards reported with "No running processes found"
    tool_version: Optional[str] = None
    driver_version: Optional[str] = None
    messages: tuple[str, ...] = ()  # warnings/errors printed outside the table

    @property
    def npu_ids(self) -> tuple[int, ...]:
        return tuple(n.npu_id for n in self.npus)

    def npu(self, npu_id: int) -> Npu:
        for n in self.npus:
            if n.npu_id == npu_id:
                return n
        raise KeyError(f"no NPU {npu_id} in npu-smi output (NPUs: {list(self.npu_ids)})")

    def processes_on(self, npu_id: int) -> tuple[NpuProcess, ...]:
        return tuple(p for p in self.processes if p.npu_id == npu_id)

    @property
    def busy_npus(self) -> tuple[int, ...]:
        """NPU ids with at least one process, sorted."""
        return tuple(sorted({p.npu_id for p in self.processes}))

    @property
    def pids(self) -> tuple[int, ...]:
        """Distinct pids holding any NPU, sorted."""
        return tuple(sorted({p.pid for p in self.processes}))


def _sum(values) -> Optional[int]:
    vals = list(values)
    return None if any(v is None for v in vals) else sum(vals)


def _cells(line: str) -> list[str]:
    inner = line[1:-1] if line.endswith("|") else line[1:]
    return [c.strip() for c in inner.split("|")]


def _number(token: str, kind=int, what: str = "value", no: int = 0, line: str = ""):
    """``token`` as ``kind``; "-" and "NA" (not available) give None, anything else raises."""
    if token in ("-", "NA", "N/A", ""):
        return None
    try:
        return kind(token)
    except ValueError:
        raise AscendParseError(TOOL, f"{what} is not a number", no, line) from None


def _split_usage(cell: str) -> tuple[list[str], list[tuple[int, int]]]:
    """``"0   0    / 0   33126/ 65536"`` -> (["0"], [(0, 0), (33126, 65536)])."""
    pairs = [(int(a), int(b)) for a, b in _PAIR.findall(cell)]
    return _PAIR.sub(" ", cell).split(), pairs


class _Builder:
    """Collects rows in order; row 1 opens a chip, row 2 completes it."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.chips: dict[int, list[NpuChip]] = {}
        self.pending: Optional[tuple[int, dict]] = None  # (npu id, row-1 fields)
        self.pending_line = (0, "")

    def row1(self, npu_id: int, name: str, cells: list[str], no: int, line: str) -> None:
        if self.pending is not None:
            raise AscendParseError(TOOL, "chip row 1 without its second row", *self.pending_line)
        tokens, pairs = _split_usage(cells[2])
        if len(tokens) != 2 or len(pairs) > 1:
            raise AscendParseError(TOOL, "expected power, temperature [, hugepages used/total]", no, line)
        fields = {
            "health": cells[1],
            "power_w": _number(tokens[0], float, "power", no, line),
            "temp_c": _number(tokens[1], int, "temperature", no, line),
        }
        if pairs:
            fields["hugepages_used"], fields["hugepages_total"] = pairs[0]
        self.names.setdefault(npu_id, name)
        self.pending, self.pending_line = (npu_id, fields), (no, line)

    def row2(self, chip_id: int, phy_id: Optional[int], cells: list[str], no: int, line: str) -> None:
        if self.pending is None:
            raise AscendParseError(TOOL, "chip row 2 without a preceding NPU row", no, line)
        tokens, pairs = _split_usage(cells[2])
        if len(tokens) != 1 or not 1 <= len(pairs) <= 2:
            raise AscendParseError(TOOL, "expected AICore %, [memory used/total,] HBM used/total", no, line)
        npu_id, fields = self.pending
        if len(pairs) == 2:
            fields["memory_used_mb"], fields["memory_total_mb"] = pairs[0]
        fields["hbm_used_mb"], fields["hbm_total_mb"] = pairs[-1]
        chip = NpuChip(
            chip_id,
            cells[1],
            aicore_percent=_number(tokens[0], int, "AICore %", no, line),
            phy_id=phy_id,
            **fields,
        )
        self.chips.setdefault(npu_id, []).append(chip)
        self.pending = None

    def npus(self) -> tuple[Npu, ...]:
        if self.pending is not None:
            raise AscendParseError(TOOL, "chip row 1 without its second row", *self.pending_line)
        return tuple(Npu(i, self.names[i], tuple(self.chips[i])) for i in self.chips)


def _process(cells: list[str], no: int, line: str) -> Optional[NpuProcess]:
    head = _PROC_HEAD.match(cells[0])
    if not head or len(cells) not in (4, 5) or not cells[1].isdigit() or not cells[-1].isdigit():
        return None
    container = None
    if len(cells) == 5:
        container = _number(cells[2], int, "process id in container", no, line)
    npu_id, chip_id = int(head.group(1)), int(head.group(2))
    return NpuProcess(npu_id, chip_id, int(cells[1]), cells[-2], int(cells[-1]), container)


def parse_npu_smi_info(text: str) -> NpuSmiInfo:
    """Parse `npu-smi info`; raises AscendToolError when it printed only an error, else
    AscendParseError naming the first row that fits no known shape."""
    builder = _Builder()
    processes: list[NpuProcess] = []
    idle: list[int] = []
    messages: list[str] = []
    versions: tuple[Optional[str], Optional[str]] = (None, None)
    framed = False
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line.startswith(("|", "+")):
            if line:
                messages.append(line)
            continue
        framed = True
        if line.startswith("+"):
            continue
        cells = _cells(line)
        if len(cells) == 1:
            version, idle_row = _VERSION.match(cells[0]), _IDLE.match(cells[0])
            if version:
                versions = (version.group(1), version.group(2))
            elif idle_row:
                idle.append(int(idle_row.group(1)))
            continue
        if len(cells) >= 3 and _BUS_ID.match(cells[1]):
            head = _ROW2_HEAD.match(cells[0])
            if not head:
                raise AscendParseError(TOOL, "chip row 2 must start with the chip id", no, line)
            phy = int(head.group(2)) if head.group(2) else None
            builder.row2(int(head.group(1)), phy, cells, no, line)
            continue
        proc = _process(cells, no, line)
        if proc is not None:
            processes.append(proc)
            continue
        head = _ROW1_HEAD.match(cells[0])
        if head and len(cells) == 3 and cells[1] and not cells[1][0].isdigit():
            builder.row1(int(head.group(1)), head.group(2).strip(), cells, no, line)
            continue
        if cells[0][:1].isdigit():
            raise AscendParseError(TOOL, "row fits no known npu-smi layout", no, line)
        # anything else is a header row (possibly localized): skipped on purpose
    npus = builder.npus()
    if not npus:
        raise_tool_error(TOOL, "\n".join(messages), "no NPU table")
        if not framed:
            raise AscendParseError(TOOL, "no NPU table found" if text.strip() else "empty output")
    return NpuSmiInfo(npus, tuple(processes), tuple(idle), versions[0], versions[1], tuple(messages))
