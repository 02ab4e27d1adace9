"""Driver and CANN versions from their install files, and Ascend cards from `lspci`."""

from __future__ import annotations

import re

from orchestrator.ascend.common import AscendParseError
from orchestrator.ascend.npu_smi_queries import PCI_GENERATIONS

DRIVER_VERSION_FILE = "/usr/local/Ascend/driver/version.info"
CANN_INSTALL_INFO = "/usr/local/Ascend/ascend-toolkit/latest/{arch}-linux/ascend_toolkit_install.info"


def _assignments(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            found.setdefault(key.strip().lower(), value.strip().strip("\"'"))
    return found


def parse_driver_version(text: str) -> str:
    """`driver/version.info` -> version; prefers `package_version=` over `Version=`."""
    values = _assignments(text)
    version = values.get("package_version") or values.get("version")
    if not version:
        raise AscendParseError(DRIVER_VERSION_FILE, "no `package_version=` or `Version=` line")
    return version


def parse_cann_version(text: str) -> str:
    """`ascend_toolkit_install.info` -> CANN version (`version=8.3.RC2`)."""
    version = _assignments(text).get("version")
    if not version:
        raise AscendParseError("ascend_toolkit_install.info", "no `version=` line")
    return version


_LSPCI = re.compile(r"^(\S+)\s.*\bDevice\s+(d80[0-9a-f])\b", re.IGNORECASE)


def parse_lspci_ascend(text: str) -> tuple[tuple[str, str], ...]:
    """`lspci` -> ((bus address, generation), ...) of the Huawei Ascend 910 cards, in printed order."""
    cards = []
    for line in text.splitlines():
        found = _LSPCI.match(line.strip())
        if found and found.group(2).lower() in PCI_GENERATIONS:
            cards.append((found.group(1), PCI_GENERATIONS[found.group(2).lower()]))
    return tuple(cards)
