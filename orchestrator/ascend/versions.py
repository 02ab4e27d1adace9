"""Driver and CANN versions from their install files, the pinned pairing, and Ascend cards from `lspci`.

File formats (docs/ascend-tool-outputs.md "Devices and versions"): `<root>/driver/version.info` holds
`Version=25.3.rc1` and `package_version=25.3.rc1` among other keys; CANN 8.3 writes
`<root>/ascend-toolkit/latest/<arch>-linux/ascend_toolkit_install.info` with `package_name=Ascend-cann-toolkit`
and `version=8.3.RC1`.
"""

from __future__ import annotations

import posixpath
import re
from typing import Optional

from orchestrator.ascend.common import AscendParseError
from orchestrator.ascend.npu_smi_queries import PCI_GENERATIONS

DEFAULT_ASCEND_ROOT = "/usr/local/Ascend"
DRIVER_VERSION_FILE = "/usr/local/Ascend/driver/version.info"
CANN_INSTALL_INFO = "/usr/local/Ascend/ascend-toolkit/latest/{arch}-linux/ascend_toolkit_install.info"

# The pairing of our pins (MindFormers r1.7.0 installation guide, "Confirming Version Matching
# Relationship"; docs/ascend-cluster.md §7).
PAIRING = {
    "mindformers": "1.7.0",
    "mindspore": "2.7.1",
    "cann": "8.3.RC1",
    "driver": "25.3.RC1",  # NPU firmware & driver package
}


def toolkit_dir(root: str) -> str:
    """The CANN toolkit's `latest` folder under an Ascend install root."""
    return posixpath.join(root, "ascend-toolkit", "latest")


def driver_version_file(root: str) -> str:
    return posixpath.join(root, "driver", "version.info")


def same_version(found: str, wanted: str) -> bool:
    """Versions equal ignoring case ("25.3.rc1" in version.info is the release named 25.3.RC1)."""
    return found.strip().lower() == wanted.strip().lower()


def _assignments(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            found.setdefault(key.strip().lower(), value.strip().strip("\"'"))
    return found


def parse_version_info(text: str) -> dict[str, str]:
    """Every `key=value` of a version file, keys lower-cased (the first of a repeated key wins)."""
    return _assignments(text)


_RELEASE = re.compile(r"V\d+R\d+C\d+", re.IGNORECASE)


def release_of(inner_version: str) -> Optional[str]:
    """The release part of an inner version: "V100R001C23SPC001B231" -> "V100R001C23"."""
    found = _RELEASE.match(inner_version.strip())
    return found.group(0).upper() if found else None


def compatible_releases(value: str) -> tuple[str, ...]:
    """The releases a `compatible_version=[V100R001C19],[V100R001C20]...` line lists."""
    return tuple(r.upper() for r in _RELEASE.findall(value))


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
