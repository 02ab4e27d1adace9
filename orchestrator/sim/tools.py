"""Install the fake Ascend tools: the stdlib scripts behind ``npu-smi`` and ``hccn_tool``.

On a node the modules live in the node's own /usr/local (``NODE_TOOLS``) and the executables run
under the system Python (``system_python``): nothing of the controller's checkout or venv is used.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Optional

SOURCES = Path(__file__).parent / "fake_tools"
MODULES = ("printers.py", "nodeconf.py", "npu_smi.py", "hccn_tool.py")
COMMANDS = {"npu-smi": "npu_smi", "hccn_tool": "hccn_tool"}
NODE_TOOLS = "/usr/local/lib/orchestrate-sim/tools"  # the modules, inside a node


def system_python() -> str:
    """The machine's own Python 3 (what a fresh node has), else the one running us."""
    for candidate in ("/usr/bin/python3", "/bin/python3"):
        if Path(candidate).exists():
            return candidate
    return sys.executable


def install(folder: Path, python: str, seen_as: Optional[str] = None) -> dict[str, Path]:
    """Copy the scripts into ``folder``; return command name -> executable path. ``seen_as`` is the
    folder's path where the executables run (a node's view of it), default ``folder`` itself."""
    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    for name in MODULES:
        shutil.copyfile(SOURCES / name, folder / name)
        (folder / name).chmod(0o644)
    out = {}
    for command, module in COMMANDS.items():
        exe = folder / command
        exe.write_text(
            f"#!{python} -I\n# fake {command} of a simulated Ascend node (orchestrate sim)\n"
            f"import sys\nsys.path.insert(0, {str(seen_as or folder)!r})\nimport {module}\n"
            f"sys.exit({module}.main(sys.argv[1:]))\n"
        )
        exe.chmod(0o755)
        out[command] = exe
    return out
