"""`npu-smi info` parser against the real public captures in tests/fixtures/ascend_captures."""

from __future__ import annotations

import pytest

from orchestrator.ascend import parse_npu_smi_info
from tests.fixtures.captures import CAPTURES

FIXTURES = CAPTURES


def _info(name: str):
    return parse_npu_smi_info((FIXTURES / name).read_text())


def test_910premiuma_23_0_rc2_eight_npus_one_python_each():
    info = _info("npu-smi_info_910PremiumA_23.0.rc2_8npu_procs.txt")
    assert (info.tool_version, info.driver_version) == ("23.0.rc2", "23.0.rc2")
    assert info.npu_ids == tuple(range(8))
    assert {n.name for n in info.npus} == {"910PremiumA"}
    assert {n.health for n in info.npus} == {"OK"}
    npu1 = info.npu(1)
    chip = npu1.chips[0]
    assert (chip.bus_id, chip.power_w, chip.temp_c, chip.aicore_percent) == ("0000:81:00.0", 295.7, 41, 90)
    assert (chip.memory_used_mb, chip.memory_total_mb) == (1612, 15137)
    assert (chip.hugepages_used, chip.hugepages_total) == (34, 34)
    assert (npu1.hbm_used_mb, npu1.hbm_total_mb) == (31842, 32768)
    assert info.npu(7).chips[0].memory_total_mb == 15039
    assert [(p.npu_id, p.pid, p.name, p.memory_mb) for p in info.processes][:2] == [
        (0, 5139, "python", 31913),
        (1, 5141, "python", 31913),
    ]
    assert info.pids == (5139, 5141, 5143, 5145, 5147, 5149, 5151, 5153)
    assert info.busy_npus == tuple(range(8)) and info.idle_npus == ()


def test_910b2_25_2_0_several_pids_per_npu_and_one_pid_on_several_npus():
    info = _info("npu-smi_info_910B2_25.2.0_8npu_procs.txt")
    assert info.npu_ids == tuple(range(8)) and {n.name for n in info.npus} == {"910B2"}
    assert (info.npu(0).hbm_used_mb, info.npu(0).hbm_total_mb) == (33126, 65536)
    assert info.npu(7).hbm_used_mb == 32638
    assert info.npu(0).chips[0].memory_total_mb == 0  # 910B: no DDR line
    on0 = info.processes_on(0)
    assert len(on0) == 8 and {p.name for p in on0} == {"VLLMWorker_TP"}
    assert [p.memory_mb for p in on0 if p.pid == 314183] == [29229]
    assert len(info.processes) == 15
    assert [p.npu_id for p in info.processes if p.pid == 314487] == [0, 1]
    assert info.processes_on(7)[0].pid == 317396


def test_910b3_idle_cards_and_a_process_with_a_blank_name():
    info = _info("npu-smi_info_910B3_25.2.0_8npu_idle_plus_one_unnamed.txt")
    assert info.idle_npus == (0, 1, 3, 4, 5, 6, 7)
    assert [(p.npu_id, p.chip_id, p.pid, p.name, p.memory_mb) for p in info.processes] == [
        (2, 0, 1333928, "", 37709)
    ]
    # 5-digit numbers touch the slash, shorter ones do not
    assert (info.npu(2).hbm_used_mb, info.npu(0).hbm_used_mb, info.npu(3).hbm_used_mb) == (41052, 3408, 3390)


def test_910b3_25_5_1_two_cards_with_gaps_in_ids():
    info = _info("npu-smi_info_910B3_25.5.1_2npu_procs.txt")
    assert info.npu_ids == (0, 5)
    assert info.npu(5).chips[0].aicore_percent == 12 and info.npu(5).hbm_used_mb == 60156
    assert [(p.npu_id, p.pid, p.name, p.memory_mb) for p in info.processes] == [
        (5, 2290156, "VLLMEngineCore", 56630)
    ]
    with pytest.raises(KeyError, match="no NPU 3"):
        info.npu(3)


def test_910a_21_0_4_93_columns():
    info = _info("npu-smi_info_910A_21.0.4_hugepages_2npu.txt")
    assert info.driver_version == "21.0.4" and info.npu_ids == (0, 1)
    chip = info.npu(1).chips[0]
    assert (chip.hugepages_used, chip.hugepages_total) == (15, 15)
    assert (chip.memory_used_mb, chip.memory_total_mb, chip.hbm_used_mb, chip.hbm_total_mb) == (
        1274,
        15171,
        1,
        32768,
    )
    assert info.processes == () and info.idle_npus == ()


def test_910a_23_0_rc1_warning_health():
    info = _info("npu-smi_info_910A_23.0.rc1.b070_4npu_warning_testfixture.txt")
    assert info.tool_version == "23.0.rc1.b070"
    assert [n.health for n in info.npus] == ["Warning"] * 4
    assert info.npu(2).hbm_used_mb == 30750 and info.npu(3).chips[0].memory_total_mb == 15039
    assert info.idle_npus == (0,) and info.processes == ()
