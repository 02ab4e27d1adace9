# ruff: noqa: UP031  (C printf formats of the driver, kept as printf on purpose)
"""Write the synthetic `npu-smi info` captures of the layouts missing from tests/fixtures/ascend_captures.

Built from the driver's C printf formats in docs/ascend-tool-outputs.md (``%lu`` written
as ``%d``), widened or narrowed per layout. Run from anywhere: ``python make_synthetic.py``; the
test suite checks that the committed files equal what this script prints.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def _line(width: int, cells: tuple[int, ...], fill: str = "-") -> str:
    return "+" + "+".join(fill * c for c in cells) + "+" if cells else "+" + fill * (width - 2) + "+"


def _boxed(text: str, width: int) -> str:
    return "| " + text.ljust(width - 4) + " |"


def _row(cells: tuple[int, ...], texts: tuple[str, ...]) -> str:
    return "|" + "|".join((" " + t).ljust(w) for w, t in zip(cells, texts)) + "|"


def layout_86() -> str:
    """npu-smi 20.x: no hugepages column; 4x 910A, one process, the rest idle."""
    cells, pcells, width = (19, 17, 46), (19, 17, 25, 20), 86
    out = [
        _line(width, ()),
        _boxed("npu-smi 20.3.0                      Version: 20.3.0", width),
        _line(width, cells),
    ]
    out += [
        _row(cells, ("NPU   Name", "Health", "Power(W)     Temp(C)")),
        _row(cells, ("Chip", "Bus-Id", "AICore(%)    Memory-Usage(MB) HBM-Usage(MB)")),
        _line(width, cells, "="),
    ]
    cards = [
        (0, "910A", "OK", 67.9, 33, "C1", 2703, 15039, 28000),
        (1, "910A", "OK", 70.1, 35, "81", 1180, 15039, 0),
        (2, "910A", "Alarm", 66.0, 41, "41", 1202, 15039, 0),
        (3, "910A", "OK", 65.5, 34, "01", 1190, 15039, 0),
    ]
    for npu, name, health, power, temp, bus, mem, mem_t, hbm in cards:
        out.append("| %-5d %-12s| %-15s | %-12.1f %-31d |" % (npu, name, health, power, temp))
        out.append(
            "| %-18d| %04X:%s:%02X.%-2X   | %-12d %-5d/ %-9d %-5d/ %-7d |"
            % (0, 0, bus, 0, 0, 0, mem, mem_t, hbm, 32768)
        )
        out.append(_line(width, cells, "="))
    out += [
        _line(width, pcells),
        _row(pcells, ("NPU     Chip", "Process id", "Process name", "Process memory(MB)")),
        _line(width, pcells, "="),
    ]
    out.append("| %-7d %-10d| %-15d | %-23s | %-18d |" % (0, 0, 40210, "python3.7", 27800))
    out.append(_line(width, pcells, "="))
    for npu in (1, 2, 3):
        out.append(_boxed("No running processes found in NPU %-7d" % npu, width))
        out.append(_line(width, pcells, "="))
    return "\n".join(out) + "\n"


def _layout_98_like(version: str, cells: tuple[int, int, int], widen: int, names) -> list[str]:
    width = sum(cells) + 4
    pad = " " * widen
    out = [_line(width, ()), _boxed(f"npu-smi {version:<24s} Version: {version}", width), _line(width, cells)]
    first = cells[0] - 7
    out += [
        "| NPU   %s| %-13s | Power(W)    Temp(C)           Hugepages-Usage(page)%s|"
        % (names[0].ljust(first), names[1], pad),
        "| %s| Bus-Id        | AICore(%%)   Memory-Usage(MB)  HBM-Usage(MB)        %s|"
        % ("Chip".ljust(cells[0] - 1), pad),
        _line(width, cells, "="),
    ]
    return out


def _card_98(
    npu: int,
    name: str,
    health: str,
    power,
    temp: int,
    bus: int,
    aicore: int,
    hbm: int,
    total: int,
    first: int,
    widen: int,
    chip: int = 0,
    phy=None,
) -> list[str]:
    power_text = "%-11.1f" % power if power is not None else "%-11s" % "-"
    row1 = "| %-5d %-*s| %-13s | %s %-17d %-5d/ %-*d |" % (
        npu,
        first - 7,
        name,
        health,
        power_text,
        temp,
        0,
        13 + widen,
        0,
    )
    head = "%-*d" % (first - 1, chip) if phy is None else "%-5d %-*d" % (chip, first - 7, phy)
    row2 = "| %s| %04X:%02X:%02X.%-2X | %-11d %-5d/ %-10d %-5d/ %-*d |" % (
        head,
        0,
        bus,
        0,
        0,
        aicore,
        0,
        0,
        hbm,
        13 + widen,
        total,
    )
    return [row1, row2]


def layout_93_procs() -> str:
    """npu-smi 22.0.x, 93 columns: 8x 910ProB with processes, one pid on two NPUs."""
    cells, first = (22, 15, 52), 22
    out = _layout_98_like("22.0.2", cells, 0, ("Name", "Health"))
    for npu in range(8):
        out += _card_98(
            npu,
            "910ProB",
            "OK",
            120.5 + npu,
            40 + npu,
            0xC1 - 0x40 * (npu % 4),
            30 + npu,
            15000 + npu,
            32768,
            first,
            0,
        )
        out.append(_line(93, cells, "="))
    out += [
        _line(93, cells),
        "| NPU     Chip         | Process id    | Process name             | Process memory(MB)      |",
        _line(93, cells, "="),
    ]
    for npu in range(8):
        pid = 7000 if npu < 2 else 7000 + npu
        out.append("| %-7d %-13d| %-13d | %-24s | %-23d |" % (npu, 0, pid, "python", 14800 + npu))
        out.append(_line(93, cells, "="))
    return "\n".join(out) + "\n"


def layout_116_container() -> str:
    """npu-smi 26.0.x, 116 columns: "Process id in container" column; 2x 910B3."""
    widen = 18
    cells = (27, 15, 52 + widen)
    out = _layout_98_like("26.0.0", cells, widen, ("Name", "Health"))
    out += _card_98(0, "910B3", "OK", 98.1, 35, 0xC1, 10, 45012, 65536, 27, widen)
    out.append(_line(116, cells, "="))
    out += _card_98(1, "910B3", "OK", 96.4, 36, 0xC2, 0, 3402, 65536, 27, widen)
    out.append(_line(116, cells, "="))
    pcells = (27, 15, 25, 26, 17)
    out += [
        _line(116, pcells),
        "| NPU     Chip              | Process id    | Process id in container | Process name             | Memory(MB)      |",
        _line(116, pcells, "="),
    ]
    out.append("| %-7d %-18d| %-13d | %-23d | %-24s | %-15d |" % (0, 0, 918273, 1042, "python3.11", 41200))
    out.append("| %-7d %-18d| %-13d | %-23s | %-24s | %-15d |" % (0, 0, 918300, "-", "", 120))
    out.append(_line(116, pcells, "="))
    out.append(_boxed("No running processes found in NPU %-7d" % 1, 116))
    out.append(_line(116, pcells, "="))
    return "\n".join(out) + "\n"


def layout_a3() -> str:
    """Atlas A3 (24.1.x): two chips per NPU, each with its own first row; second chip power "-"."""
    cells = (27, 15, 52)
    out = _layout_98_like("24.1.0", cells, 0, ("Name", "Health"))
    out[4] = (
        "| Chip  Phy-ID              | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |"
    )
    for npu in range(2):
        for chip in range(2):
            power = 180.2 + npu if chip == 0 else None
            health = "OK" if (npu, chip) != (1, 1) else "Critical"
            bus = 0x9D + 2 * (2 * npu + chip)
            out += _card_98(
                npu,
                "Ascend910",
                health,
                power,
                38 + chip,
                bus,
                0,
                3300 + 10 * chip,
                65536,
                27,
                0,
                chip,
                2 * npu + chip,
            )
            out.append(_line(98, cells, "=" if chip == 1 else "-"))
    out += [
        _line(98, cells),
        "| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |",
        _line(98, cells, "="),
    ]
    for npu, chip, pid in ((0, 0, 2001), (0, 1, 2001), (1, 1, 2002)):
        out.append("| %-7d %-18d| %-13d | %-24s | %-23d |" % (npu, chip, pid, "VLLMWorker", 6000 + chip))
    out.append(_line(98, cells, "="))
    return "\n".join(out) + "\n"


def layout_localized_warning() -> str:
    """98 columns with Chinese headers, several pids per NPU, a trailing [WARNING] line."""
    cells = (27, 15, 52)
    out = [
        _line(98, ()),
        _boxed("npu-smi 24.1.rc2                 版本: 24.1.rc2", 98),
        _line(98, cells),
        "| NPU   名称                | 健康状态      | 功率(W)     温度(C)           大页使用(页)         |",
        "| 芯片                      | 总线ID        | AICore(%)   内存使用(MB)      HBM使用(MB)          |",
        _line(98, cells, "="),
    ]
    for npu in range(2):
        out += _card_98(npu, "910B4", "OK", 88.0 + npu, 36, 0xC1 + npu, 1, 21000 + npu, 32768, 27, 0)
        out.append(_line(98, cells, "="))
    out += [
        _line(98, cells),
        "| NPU     芯片              | 进程ID        | 进程名称                 | 进程内存(MB)            |",
        _line(98, cells, "="),
    ]
    for pid, name, mem in ((311, "python", 20000), (312, "", 500), (313, "mindie_llm_back", 400)):
        out.append("| %-7d %-18d| %-13d | %-24s | %-23d |" % (0, 0, pid, name, mem))
    out.append(_line(98, cells, "="))
    out.append("| %-7d %-18d| %-13d | %-24s | %-23d |" % (1, 0, 311, "python", 20900))
    out.append(_line(98, cells, "="))
    out.append(
        "[WARNING]The driver package may not be completely installed, please check the driver package version."
    )
    return "\n".join(out) + "\n"


FILES = {
    "npu-smi_info_20.3.0_86col_4npu.txt": layout_86,
    "npu-smi_info_22.0.2_93col_8npu_procs.txt": layout_93_procs,
    "npu-smi_info_26.0.0_116col_container.txt": layout_116_container,
    "npu-smi_info_A3_24.1.0_2npu_2chip.txt": layout_a3,
    "npu-smi_info_24.1.rc2_localized_warning.txt": layout_localized_warning,
}


if __name__ == "__main__":
    for name, make in FILES.items():
        (HERE / name).write_text(make(), encoding="utf-8")
        print(name)
