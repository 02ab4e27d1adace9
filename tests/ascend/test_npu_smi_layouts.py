"""`npu-smi info` layouts missing from the real captures (synthetic, see data/make_synthetic.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.ascend import AscendParseError, AscendToolError, parse_npu_smi_info
from tests.ascend.data import make_synthetic

DATA = Path(__file__).parent / "data"


def _info(name: str):
    return parse_npu_smi_info((DATA / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(make_synthetic.FILES))
def test_committed_synthetic_files_match_their_generator(name):
    assert (DATA / name).read_text(encoding="utf-8") == make_synthetic.FILES[name]()


def test_86_columns_without_hugepages():
    info = _info("npu-smi_info_20.3.0_86col_4npu.txt")
    assert info.npu_ids == (0, 1, 2, 3) and info.npu(2).health == "Alarm"
    chip = info.npu(0).chips[0]
    assert (chip.hugepages_used, chip.hugepages_total) == (None, None)
    assert (chip.memory_used_mb, chip.memory_total_mb, chip.hbm_used_mb, chip.hbm_total_mb) == (
        2703,
        15039,
        28000,
        32768,
    )
    assert [(p.npu_id, p.pid, p.name, p.memory_mb) for p in info.processes] == [
        (0, 40210, "python3.7", 27800)
    ]
    assert info.idle_npus == (1, 2, 3)


def test_93_columns_with_one_pid_on_two_npus():
    info = _info("npu-smi_info_22.0.2_93col_8npu_procs.txt")
    assert info.npu_ids == tuple(range(8)) and info.npu(4).name == "910ProB"
    assert [p.npu_id for p in info.processes if p.pid == 7000] == [0, 1]
    assert info.pids == (7000, 7002, 7003, 7004, 7005, 7006, 7007)


def test_116_columns_with_process_id_in_container():
    info = _info("npu-smi_info_26.0.0_116col_container.txt")
    assert info.driver_version == "26.0.0" and info.npu(0).hbm_used_mb == 45012
    assert [(p.pid, p.container_pid, p.name, p.memory_mb) for p in info.processes] == [
        (918273, 1042, "python3.11", 41200),
        (918300, None, "", 120),
    ]
    assert info.idle_npus == (1,)


def test_atlas_a3_two_chips_per_npu_second_power_dash():
    info = _info("npu-smi_info_A3_24.1.0_2npu_2chip.txt")
    assert info.npu_ids == (0, 1)
    npu0, npu1 = info.npus
    assert [c.chip_id for c in npu0.chips] == [0, 1] and [c.phy_id for c in npu1.chips] == [2, 3]
    assert [c.power_w for c in npu0.chips] == [180.2, None]
    assert (npu0.hbm_used_mb, npu0.hbm_total_mb) == (6610, 131072)
    assert npu0.health == "OK" and npu1.health == "Critical"
    assert [(p.npu_id, p.chip_id, p.pid) for p in info.processes] == [
        (0, 0, 2001),
        (0, 1, 2001),
        (1, 1, 2002),
    ]


def test_localized_headers_and_trailing_warning():
    info = _info("npu-smi_info_24.1.rc2_localized_warning.txt")
    assert info.tool_version == "24.1.rc2" and info.npu_ids == (0, 1)
    assert [(p.npu_id, p.pid, p.name) for p in info.processes] == [
        (0, 311, "python"),
        (0, 312, ""),
        (0, 313, "mindie_llm_back"),
        (1, 311, "python"),
    ]
    assert info.messages and info.messages[0].startswith("[WARNING]The driver package")


def test_error_on_stdout_raises_tool_error_with_its_message():
    text = "dcmi model initialized failed, because the device is used. ret is -8020\n"
    with pytest.raises(AscendToolError, match="ret is -8020"):
        parse_npu_smi_info(text)


def test_empty_output_is_a_parse_error():
    with pytest.raises(AscendParseError, match="empty output"):
        parse_npu_smi_info("")


def test_unknown_row_shape_names_the_line():
    good = _info("npu-smi_info_20.3.0_86col_4npu.txt")
    assert good.npu_ids
    text = (DATA / "npu-smi_info_20.3.0_86col_4npu.txt").read_text()
    broken = text.replace(
        "| 0                 | 0000:C1:00.0    | 0            2703 / 15039",
        "| 0                 | 0000:C1:00.0    | zz           2703 / 15039",
    )
    with pytest.raises(AscendParseError, match=r"line 8: AICore % is not a number: '\| 0 .*zz"):
        parse_npu_smi_info(broken)
    garbage = text.replace("| 1     910A        | OK ", "| 1     910A        | 77 ")
    with pytest.raises(AscendParseError, match="line 10: row fits no known npu-smi layout"):
        parse_npu_smi_info(garbage)


def test_row_two_without_row_one_is_an_error():
    text = (
        "| 0                         | 0000:C1:00.0  | 0           0    / 0          3445 / 65536         |\n"
    )
    with pytest.raises(AscendParseError, match="without a preceding NPU row"):
        parse_npu_smi_info(text)
    orphan = (
        "| 0     910B3               | OK            | 102.8       45                0    / 0             |\n"
    )
    with pytest.raises(AscendParseError, match="without its second row"):
        parse_npu_smi_info(orphan)


def test_parse_error_is_a_value_error():
    assert issubclass(AscendParseError, ValueError) and issubclass(AscendToolError, AscendParseError)
