"""`npu-smi info -l / -m / -t board / -t spod-info`, `npu-smi -v`, version files and lspci."""

from __future__ import annotations

import pytest

from orchestrator.ascend import (
    AscendParseError,
    AscendToolError,
    ChipMapping,
    parse_cann_version,
    parse_driver_version,
    parse_lspci_ascend,
    parse_npu_smi_board,
    parse_npu_smi_list,
    parse_npu_smi_mapping,
    parse_npu_smi_spod_info,
    parse_npu_smi_version,
)
from tests.ascend.test_hccn import sections
from tests.fixtures.captures import CAPTURES

FIXTURES = CAPTURES


def test_list_of_eight():
    assert parse_npu_smi_list((FIXTURES / "npu-smi_info_-l_8npu_tabs.txt").read_text()) == tuple(range(8))


def test_mapping_910b3_skips_mcu_rows():
    rows = parse_npu_smi_mapping((FIXTURES / "npu-smi_info_-m_910B3_first2npu_verbatim_tabs.txt").read_text())
    assert rows == (ChipMapping(0, 0, 0, "Ascend 910B3"), ChipMapping(1, 0, 1, "Ascend 910B3"))


def test_mindcluster_capture_mapping_board_and_lspci():
    parts = sections((FIXTURES / "mindcluster_npu_info_before_910A.txt").read_text())
    rows = parse_npu_smi_mapping(parts["/usr/local/bin/npu-smi info -m"])
    assert [r.logic_id for r in rows] == list(range(8)) and {r.name for r in rows} == {"Ascend 910A"}
    board = parse_npu_smi_board(parts["/usr/local/bin/npu-smi info -i 0 -t board"])
    assert (board.npu_id, board.software_version, board.firmware_version) == (0, "23.0.5", "7.1.0.7.220")
    assert (board.pcie_bus_info, board.pci_device_id, board.chip_count) == ("0000:61:00.0", "0xD801", 1)
    assert board.generation == "910A"
    cards = parse_lspci_ascend(parts["lspci | grep acce"])
    assert len(cards) == 8 and cards[0] == ("3d:00.0", "910A")


def test_list_total_count_mismatch_and_errors():
    with pytest.raises(AscendParseError, match="Total Count 2 but 1"):
        parse_npu_smi_list("\tTotal Count : 2\n\n\tNPU ID : 0\n\tChip Count : 1\n")
    with pytest.raises(AscendToolError, match="ret is -8020"):
        parse_npu_smi_list("dcmi model initialized failed, because the device is used. ret is -8020\n")
    assert parse_npu_smi_list("\tTotal Count                    : 0\n") == ()


def test_mapping_bad_row_names_the_line():
    with pytest.raises(AscendParseError, match="line 2: expected NPU ID"):
        parse_npu_smi_mapping("\tNPU ID  Chip ID  Chip Logic ID  Chip Name\n\t0  x\n")


def test_version_and_install_files():
    assert parse_npu_smi_version("npu-smi version: 25.2.0\n") == "25.2.0"
    with pytest.raises(AscendParseError, match="no `npu-smi version"):
        parse_npu_smi_version("usage: npu-smi ...\n")
    assert parse_driver_version("Version=23.0.rc2\n") == "23.0.rc2"
    assert parse_driver_version("Version=24.1.0\npackage_version=25.2.0\n") == "25.2.0"
    assert (
        parse_cann_version("package_name=Ascend-cann-toolkit\nversion=8.3.RC2\narch=aarch64\n") == "8.3.RC2"
    )
    with pytest.raises(AscendParseError, match="version.info"):
        parse_driver_version("nothing here\n")


def test_spod_info_of_an_a3_chip():
    info = parse_npu_smi_spod_info((FIXTURES / "npu-smi_info_-t_spod-info_A3_rebuilt.txt").read_text())
    assert (info.sdid, info.super_pod_id, info.super_pod_size, info.server_index) == (16777216, 0, 384, 4)
    assert info.sdid >> 22 == info.server_index  # bits 22-31 of the SDID: the server index


def test_spod_info_not_supported_and_garbled():
    with pytest.raises(AscendToolError, match="does not support"):
        parse_npu_smi_spod_info("This device does not support querying spod-info.\n")
    with pytest.raises(AscendParseError, match="sdid is not a number"):
        parse_npu_smi_spod_info(
            "\tSDID                           : x\n\tSuper Pod ID                   : 0\n"
        )
