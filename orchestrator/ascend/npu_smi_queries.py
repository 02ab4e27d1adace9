"""Parse the small npu-smi queries: `info -l`, `info -m`, `info -t board -i N`, `info -t spod-info` and `-v`.

Their output is tab-indented with padded keys and trailing spaces: split on the first colon and
strip (``-l``, ``-t``), or on whitespace (``-m``). Errors npu-smi prints on stdout raise
:class:`AscendToolError` with the tool's message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from .common import AscendParseError, key_values, raise_tool_error  # relative: shipped to nodes

# PCI device ids of the Ascend 910 generations (`npu-smi info -t board`, `lspci`).
PCI_GENERATIONS = {"d801": "910A", "d802": "910B", "d803": "910C"}


@dataclass(frozen=True)
class ChipMapping:
    """One row of `npu-smi info -m`: the logic id is the runtime device index of the chip."""

    npu_id: int
    chip_id: int
    logic_id: int
    name: str  # e.g. "Ascend 910B3"


@dataclass(frozen=True)
class BoardInfo:
    """`npu-smi info -t board -i N`: the fields we use, plus every pair as printed."""

    npu_id: Optional[int]
    software_version: Optional[str]
    firmware_version: Optional[str]
    pcie_bus_info: Optional[str]
    pci_device_id: Optional[str]  # "0xD801"
    chip_count: Optional[int]
    fields: tuple[tuple[str, str], ...]

    @property
    def generation(self) -> Optional[str]:
        """ "910A" / "910B" / "910C" from the PCI device id, None if unknown."""
        dev = (self.pci_device_id or "").lower().replace("0x", "")
        return PCI_GENERATIONS.get(dev)


def _int(value: Optional[str]) -> Optional[int]:
    return int(value) if value is not None and value.strip().isdigit() else None


def parse_npu_smi_list(text: str) -> tuple[int, ...]:
    """`npu-smi info -l` -> the NPU ids in printed order; checks `Total Count` when present."""
    pairs = key_values(text)
    ids = []
    total = None
    for key, value in pairs:
        low = key.lower()
        if low == "npu id":
            if not value.isdigit():
                raise AscendParseError("npu-smi info -l", "NPU ID is not a number", line=f"{key} : {value}")
            ids.append(int(value))
        elif low == "total count":
            total = _int(value)
    if not ids:
        raise_tool_error("npu-smi info -l", text, "no NPU ID lines")
        if total == 0:
            return ()
        raise AscendParseError("npu-smi info -l", "no `NPU ID : N` lines found")
    if total is not None and total != len(ids):
        raise AscendParseError("npu-smi info -l", f"Total Count {total} but {len(ids)} NPU ID lines")
    return tuple(ids)


def parse_npu_smi_mapping(text: str) -> tuple[ChipMapping, ...]:
    """`npu-smi info -m` -> chips with a logic id; `Mcu` rows (logic id "-") are skipped."""
    rows = []
    for no, line in enumerate(text.splitlines(), 1):
        parts = line.split(None, 3)
        if not parts or not parts[0].isdigit():
            continue  # header (possibly localized), blank, or a message
        if len(parts) < 4 or not parts[1].isdigit():
            raise AscendParseError("npu-smi info -m", "expected NPU ID, Chip ID, Logic ID, Name", no, line)
        if parts[2] == "-":
            continue  # Mcu and other chips without a runtime device
        if not parts[2].isdigit():
            raise AscendParseError("npu-smi info -m", "chip logic id is neither a number nor '-'", no, line)
        rows.append(ChipMapping(int(parts[0]), int(parts[1]), int(parts[2]), parts[3].strip()))
    if not rows:
        raise_tool_error("npu-smi info -m", text, "no chip rows")
        raise AscendParseError("npu-smi info -m", "no chip rows found")
    return tuple(rows)


def parse_npu_smi_board(text: str) -> BoardInfo:
    """`npu-smi info -t board -i N` -> :class:`BoardInfo`."""
    pairs = tuple(key_values(text))
    if not pairs:
        raise_tool_error("npu-smi info -t board", text, "no `Key : value` lines")
        raise AscendParseError("npu-smi info -t board", "no `Key : value` lines found")
    first: dict[str, str] = {}
    for key, value in pairs:
        first.setdefault(key.lower(), value)
    return BoardInfo(
        npu_id=_int(first.get("npu id")),
        software_version=first.get("software version"),
        firmware_version=first.get("firmware version"),
        pcie_bus_info=first.get("pcie bus info"),
        pci_device_id=first.get("pci device id"),
        chip_count=_int(first.get("chip count")),
        fields=pairs,
    )


@dataclass(frozen=True)
class SpodInfo:
    """`npu-smi info -t spod-info -i N -c C` (Atlas A3): the chip's place in its SuperPoD.

    ``sdid`` is the chip's super device id (the rank table 1.2 ``super_device_id``); bits 22-31 hold
    the server index, 18-21 the NPU, 16-17 the die, 0-15 the device id (CANN DCMI reference,
    dcmi_get_spod_node_status). ``super_pod_id`` is the SuperPoD's id (``super_pod_id`` of the table).
    """

    sdid: int
    super_pod_id: int
    super_pod_size: Optional[int] = None
    server_index: Optional[int] = None


def parse_npu_smi_spod_info(text: str) -> SpodInfo:
    """`npu-smi info -t spod-info -i N -c C` -> :class:`SpodInfo`.

    The tool prints ``\\t%-30s : %u`` lines: SDID, Super Pod Size, Super Pod ID, Server Index (the
    npu-smi source's print_npu_spod_info). Devices without SuperPoD support print "This device does
    not support querying spod-info." (raised as AscendToolError).
    """
    tool = "npu-smi info -t spod-info"
    found = {key.lower(): value for key, value in key_values(text)}
    if "sdid" not in found or "super pod id" not in found:
        raise_tool_error(tool, text, "no SDID / Super Pod ID lines")
        raise AscendParseError(tool, "no `SDID : N` and `Super Pod ID : N` lines found")
    values = {}
    for key in ("sdid", "super pod id", "super pod size", "server index"):
        if key in found and not found[key].isdigit():
            raise AscendParseError(tool, f"{key} is not a number", line=f"{key} : {found[key]}")
        values[key] = _int(found.get(key))
    return SpodInfo(values["sdid"], values["super pod id"], values["super pod size"], values["server index"])


_TOOL_VERSION = re.compile(r"npu-smi\s+version\s*[:：]\s*(\S+)", re.IGNORECASE)


def parse_npu_smi_version(text: str) -> str:
    """`npu-smi -v` -> "x.y.z"."""
    found = _TOOL_VERSION.search(text)
    if not found:
        raise_tool_error("npu-smi -v", text, "no version line")
        raise AscendParseError("npu-smi -v", "no `npu-smi version: x.y.z` line found")
    return found.group(1)
