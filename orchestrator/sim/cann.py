"""The fake CANN and driver install of a simulated node, laid out where a real Ascend node keeps them.

Under the node's Ascend root (``/usr/local/Ascend`` unless the hardware file says otherwise)::

    ascend-toolkit/set_env.sh                        what a shell must source (see SET_ENV)
    ascend-toolkit/latest -> <version>
    ascend-toolkit/<version>/<arch>-linux/ascend_toolkit_install.info   (version=8.3.RC1 ...)
    ascend-toolkit/<version>/{lib64, opp, python/site-packages, bin, ...}
    driver/version.info                              (Version=..., package_version=...)
    driver/lib64/{common,driver}
    driver/tools/hccn_tool                           the fake hccn_tool (not on PATH, as on real nodes)
    nnal/atb/set_env.sh, nnal/atb/latest -> <version>/atb/cxx_abi_1/{lib,bin}

The toolkit's ``set_env.sh`` is CANN 8.x's, with the install root written in (the real installer
does the same). Its Python folders hold empty ``te``, ``tbe`` and ``impl`` packages, so a rank whose
PYTHONPATH lost CANN's entries fails to import them, as MindSpore's TBE compiler would.
Nothing on the node sources these files: a rank gets the variables only if its launcher sources them.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

SET_ENV = """\
# CANN {version} toolkit environment (simulated node; the layout and variables of the real set_env.sh)
export LD_LIBRARY_PATH={root}/driver/lib64:{root}/driver/lib64/common:{root}/driver/lib64/driver:$LD_LIBRARY_PATH
export ASCEND_TOOLKIT_HOME={root}/ascend-toolkit/latest
export LD_LIBRARY_PATH=${{ASCEND_TOOLKIT_HOME}}/lib64:${{ASCEND_TOOLKIT_HOME}}/lib64/plugin/opskernel:\
${{ASCEND_TOOLKIT_HOME}}/lib64/plugin/nnengine:\
${{ASCEND_TOOLKIT_HOME}}/opp/built-in/op_impl/ai_core/tbe/op_tiling/lib/linux/$(arch):$LD_LIBRARY_PATH
export LD_LIBRARY_PATH=${{ASCEND_TOOLKIT_HOME}}/tools/aml/lib64:${{ASCEND_TOOLKIT_HOME}}/tools/aml/lib64/plugin:\
$LD_LIBRARY_PATH
export PYTHONPATH=${{ASCEND_TOOLKIT_HOME}}/python/site-packages:\
${{ASCEND_TOOLKIT_HOME}}/opp/built-in/op_impl/ai_core/tbe:$PYTHONPATH
export PATH=${{ASCEND_TOOLKIT_HOME}}/bin:${{ASCEND_TOOLKIT_HOME}}/compiler/ccec_compiler/bin:\
${{ASCEND_TOOLKIT_HOME}}/tools/ccec_compiler/bin:$PATH
export ASCEND_AICPU_PATH=${{ASCEND_TOOLKIT_HOME}}
export ASCEND_OPP_PATH=${{ASCEND_TOOLKIT_HOME}}/opp
export TOOLCHAIN_HOME=${{ASCEND_TOOLKIT_HOME}}/toolkit
export ASCEND_HOME_PATH=${{ASCEND_TOOLKIT_HOME}}
"""

ATB_SET_ENV = """\
# CANN NNAL {version}: Ascend Transformer Boost environment (simulated node)
export ATB_HOME_PATH={root}/nnal/atb/latest/atb/cxx_abi_1
export LD_LIBRARY_PATH=$ATB_HOME_PATH/lib:$ATB_HOME_PATH/examples:$ATB_HOME_PATH/tests/atbopstest:\
$LD_LIBRARY_PATH
export PATH=$ATB_HOME_PATH/bin:$PATH
export ATB_STREAM_SYNC_EVERY_KERNEL_ENABLE=0
export ATB_STREAM_SYNC_EVERY_RUNNER_ENABLE=0
export ATB_STREAM_SYNC_EVERY_OPERATION_ENABLE=0
export ATB_OPSRUNNER_KERNEL_CACHE_LOCAL_COUNT=1
export ATB_OPSRUNNER_KERNEL_CACHE_GLOABL_COUNT=5
export ATB_WORKSPACE_MEM_ALLOC_ALG_TYPE=1
"""

TOOLKIT_DIRS = (
    "lib64/plugin/opskernel",
    "lib64/plugin/nnengine",
    "tools/aml/lib64/plugin",
    "bin",
    "compiler/ccec_compiler/bin",
    "tools/ccec_compiler/bin",
    "toolkit",
    "python/site-packages/te",
    "python/site-packages/tbe",
    "opp/built-in/op_impl/ai_core/tbe/impl",
)
PY_PACKAGES = ("python/site-packages/te", "python/site-packages/tbe", "opp/built-in/op_impl/ai_core/tbe/impl")


def arch() -> str:
    """The machine name CANN uses in paths (``x86_64``, ``aarch64``), as ``$(arch)`` prints it."""
    return platform.machine()


def toolkit_info(version: str, root: str) -> str:
    """``ascend_toolkit_install.info`` as the CANN installer writes it."""
    a = arch()
    return (
        f"package_name=Ascend-cann-toolkit\nversion={version}\ninnerversion=V100R001C23SPC001B231\n"
        "compatible_version=[V100R001C15],[V100R001C18],[V100R001C19],[V100R001C20],[V100R001C21],"
        f"[V100R001C23]\narch={a}\nos=linux\npath={root}/ascend-toolkit/{version}/{a}-linux\n"
    )


def driver_info(version: str) -> str:
    """``driver/version.info``: ``Version=`` and the ``package_version=`` newer drivers add."""
    return (
        f"Version={version}\nascendhal_version=7.35.23\naicpu_version=1.0\ntdt_version=1.0\n"
        f"log_version=1.0\nprof_version=2.0\ndvppkernels_version=1.1\ntsfw_version=1.0\n"
        f"Innerversion=V100R001C23SPC001B231\npackage_version={version}\n"
    )


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _symlink(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(target)


def install(top: Path, root: str, cann_version: str, driver_version: str, hccn_tool: Path) -> None:
    """Lay the install out in ``top`` (the host folder that is ``root`` inside the node); ``hccn_tool``
    is the fake tool's executable, copied to ``driver/tools/hccn_tool``."""
    tk = top / "ascend-toolkit" / cann_version
    for d in TOOLKIT_DIRS:
        (tk / d).mkdir(parents=True, exist_ok=True)
    (tk / "opp/built-in/op_impl/ai_core/tbe/op_tiling/lib/linux" / arch()).mkdir(parents=True, exist_ok=True)
    for pkg in PY_PACKAGES:
        _write(tk / pkg / "__init__.py", "# simulated CANN package: present only to be imported\n")
    _write(tk / f"{arch()}-linux" / "ascend_toolkit_install.info", toolkit_info(cann_version, root))
    _write(tk / "version.cfg", f"# version: 1.0\ntoolkit_running_version=[7.7.0.1.231:{cann_version}]\n")
    _symlink(top / "ascend-toolkit" / "latest", cann_version)
    _write(top / "ascend-toolkit" / "set_env.sh", SET_ENV.format(root=root, version=cann_version), 0o755)
    drv = top / "driver"
    for d in ("lib64/common", "lib64/driver", "tools"):
        (drv / d).mkdir(parents=True, exist_ok=True)
    _write(drv / "version.info", driver_info(driver_version))
    _write(drv / "tools" / "hccn_tool", hccn_tool.read_text(), 0o755)
    atb = top / "nnal" / "atb"
    for d in ("lib", "bin", "examples", "tests/atbopstest"):
        (atb / cann_version / "atb" / "cxx_abi_1" / d).mkdir(parents=True, exist_ok=True)
    _symlink(atb / "latest", cann_version)
    _write(atb / "set_env.sh", ATB_SET_ENV.format(root=root, version=cann_version), 0o755)
    for dirpath, dirnames, _ in os.walk(top):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
