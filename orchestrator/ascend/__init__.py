"""Parsers of what the Ascend node tools print: npu-smi, hccn_tool, /etc/hccn.conf, version files.

Pure functions from text to typed values; running the tools is the caller's job (run them with
``LC_ALL=C``, one npu-smi at a time per node). Unreadable output raises :class:`AscendParseError`
(a ValueError) naming the tool and the line; an error printed by the tool raises
:class:`AscendToolError`.
"""

from orchestrator.ascend.common import AscendParseError, AscendToolBusy, AscendToolError
from orchestrator.ascend.hccn import (
    DeviceNic,
    PingResult,
    parse_hccn_conf,
    parse_hccn_gateway,
    parse_hccn_ip,
    parse_hccn_link,
    parse_hccn_net_health,
    parse_hccn_netdetect,
    parse_hccn_ping,
)
from orchestrator.ascend.npu_smi import Npu, NpuChip, NpuProcess, NpuSmiInfo, parse_npu_smi_info
from orchestrator.ascend.npu_smi_queries import (
    BoardInfo,
    ChipMapping,
    SpodInfo,
    parse_npu_smi_board,
    parse_npu_smi_list,
    parse_npu_smi_mapping,
    parse_npu_smi_spod_info,
    parse_npu_smi_version,
)
from orchestrator.ascend.versions import parse_cann_version, parse_driver_version, parse_lspci_ascend

__all__ = [
    "AscendParseError",
    "AscendToolBusy",
    "AscendToolError",
    "BoardInfo",
    "ChipMapping",
    "DeviceNic",
    "Npu",
    "NpuChip",
    "NpuProcess",
    "NpuSmiInfo",
    "PingResult",
    "SpodInfo",
    "parse_cann_version",
    "parse_driver_version",
    "parse_hccn_conf",
    "parse_hccn_gateway",
    "parse_hccn_ip",
    "parse_hccn_link",
    "parse_hccn_net_health",
    "parse_hccn_netdetect",
    "parse_hccn_ping",
    "parse_lspci_ascend",
    "parse_npu_smi_board",
    "parse_npu_smi_info",
    "parse_npu_smi_list",
    "parse_npu_smi_mapping",
    "parse_npu_smi_spod_info",
    "parse_npu_smi_version",
]
