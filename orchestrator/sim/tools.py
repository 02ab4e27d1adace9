"""Install the fake Ascend tools of a cluster: the stdlib scripts behind ``npu-smi`` and ``hccn_tool``."""

from __future__ import annotations

import shutil
from pathlib import Path

SOURCES = Path(__file__).parent / "fake_tools"
MODULES = ("printers.py", "nodeconf.py", "npu_smi.py", "hccn_tool.py")
COMMANDS = {"npu-smi": "npu_smi", "hccn_tool": "hccn_tool"}


def install(folder: Path, python: str) -> dict[str, Path]:
    """Copy the scripts into ``folder``; return command name -> executable path."""
    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    for name in MODULES:
        shutil.copyfile(SOURCES / name, folder / name)
    out = {}
    for command, module in COMMANDS.items():
        exe = folder / command
        exe.write_text(
            f"#!{python} -I\n# fake {command} of a simulated Ascend node (orchestrate sim)\n"
            f"import sys\nsys.path.insert(0, {str(folder)!r})\nimport {module}\n"
            f"sys.exit({module}.main(sys.argv[1:]))\n"
        )
        exe.chmod(0o755)
        out[command] = exe
    return out
