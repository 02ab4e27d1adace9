"""What MindSpore, CANN and HCCL check before a rank on an Ascend node can train, and how they fail.

Each check raises :class:`RankFailure` with the text the real stack prints in that case (MindSpore's
"Unsupported device target Ascend" when CANN's libraries are not on LD_LIBRARY_PATH, a failed import
of CANN's TBE packages when PYTHONPATH lost them, HCCL's rank-table errors, EJ0001 on a held NPU).
"""

# ruff: noqa: UP031  (the messages mirror the C formats of CANN/HCCL)
from __future__ import annotations

import importlib
import json
import os
from typing import Any, Dict, List, Mapping, Optional

MS_ASCEND_LOAD = (
    "RuntimeError: Unsupported device target Ascend. This process only supports one of the ['CPU']. "
    "Please check whether the Ascend environment is installed and configured correctly, and check "
    'whether current mindspore wheel package was built with "-e Ascend". For details, please refer to '
    '"Device load error message".\n\n'
    "----------------------------------------------------\n- Device load error message:\n"
    "----------------------------------------------------\n"
    "Load dynamic library: libmindspore_ascend.so.2 failed. {lib}: cannot open shared object file: "
    "No such file or directory\n"
)
EJ0001 = (
    "EJ0001: Failed to initialize the HCCP process. Reason: Maybe the last training process is running.\n"
    "        Solution: Wait for 10s after killing the last training process and try again.\n"
    "        TraceBack (most recent call last):\n"
    "        tsd client wait response fail, device response code[1]. unknown device error."
    "[FUNC:WaitRsp][FILE:process_mode_manager.cpp]\n"
)


class RankFailure(Exception):
    """The rank fails here; ``str()`` is what it prints last."""


def _real(path: str) -> str:
    return os.path.realpath(path) if path else ""


def _entries(env: Mapping[str, str], name: str) -> List[str]:
    return [_real(p) for p in env.get(name, "").split(":") if p]


def check_cann(env: Mapping[str, str], root: Optional[str]) -> str:
    """The CANN environment of ``set_env.sh`` is in ``env`` and points at this node's install under
    ``root``; returns the toolkit folder (``<root>/ascend-toolkit/latest``, resolved)."""
    toolkit = _real(os.path.join(root, "ascend-toolkit", "latest")) if root else ""
    if not toolkit or not os.path.isdir(toolkit):
        raise RankFailure(MS_ASCEND_LOAD.format(lib="libge_runner.so") + "(no CANN toolkit on this node)")
    libs = _entries(env, "LD_LIBRARY_PATH")
    for lib, folder in (
        ("libascend_hal.so", os.path.join(root, "driver", "lib64", "driver")),
        ("libge_runner.so", os.path.join(toolkit, "lib64")),
        ("libopskernel.so", os.path.join(toolkit, "lib64", "plugin", "opskernel")),
    ):
        if _real(folder) not in libs:
            raise RankFailure(MS_ASCEND_LOAD.format(lib=lib))
    wanted = {
        "ASCEND_OPP_PATH": os.path.join(toolkit, "opp"),
        "ASCEND_AICPU_PATH": toolkit,
        "ASCEND_HOME_PATH": toolkit,
        "ASCEND_TOOLKIT_HOME": toolkit,
        "TOOLCHAIN_HOME": os.path.join(toolkit, "toolkit"),
    }
    for name, path in wanted.items():
        value = env.get(name, "")
        if not value:
            raise RankFailure(
                "RuntimeError: E19999: Inner Error! Get env %s failed: it is not set (source %s/ascend-toolkit/"
                "set_env.sh before starting the process)" % (name, root)
            )
        if _real(value) != _real(path) or not os.path.isdir(value):
            raise RankFailure(
                "RuntimeError: E19999: Inner Error! %s=%s is not this node's CANN install (%s)"
                % (name, value, path)
            )
    for module in ("te", "tbe", "impl"):  # CANN's Python packages, found through PYTHONPATH only
        try:
            found = importlib.import_module(module)
        except ImportError as exc:
            raise RankFailure(
                "ModuleNotFoundError: %s (TBE operator compilation needs CANN's Python paths on PYTHONPATH: "
                "%s/python/site-packages and %s/opp/built-in/op_impl/ai_core/tbe)" % (exc, toolkit, toolkit)
            ) from None
        if not _real(getattr(found, "__file__", "") or "").startswith(toolkit + os.sep):
            raise RankFailure("ImportError: module %r does not come from CANN at %s" % (module, toolkit))
    return toolkit


def physical_device(logical: int, env: Mapping[str, str], node_ids: List[int]) -> int:
    """The physical NPU behind the runtime's device ``logical`` (ASCEND_RT_VISIBLE_DEVICES renumbers)."""
    visible = env.get("ASCEND_RT_VISIBLE_DEVICES")
    ids = [int(x) for x in visible.split(",") if x.strip()] if visible else sorted(node_ids)
    if not 0 <= logical < len(ids) or ids[logical] not in node_ids:
        raise RankFailure(
            "RuntimeError: Call aclrtSetDevice failed, ret[107001]. Got device count[%d] and device id[%d], "
            "please check if device id is valid." % (len(ids), logical)
        )
    return ids[logical]


def hccn_addresses(path: str = "/etc/hccn.conf") -> Dict[int, str]:
    out: Dict[int, str] = {}
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                if key.startswith("address_") and key[8:].isdigit():
                    out[int(key[8:])] = value
    except OSError:
        pass
    return out


def rank_table_entry(env: Mapping[str, str]) -> Dict[str, Any]:
    """This rank's device entry of RANK_TABLE_FILE, with its server's ``server_id``."""
    path, rank = env.get("RANK_TABLE_FILE", ""), env.get("RANK_ID", "")
    try:
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
    except (OSError, ValueError) as exc:
        raise RankFailure(
            "EI0004: The ranktable is invalid: cannot read RANK_TABLE_FILE=%s (%s)" % (path, exc)
        ) from None
    if table.get("status") != "completed":
        raise RankFailure(
            "EI0004: The ranktable is invalid: status is %r, not 'completed'" % table.get("status")
        )
    servers = list(table.get("server_list") or [])
    for group in table.get("server_group_list") or []:
        servers += group.get("server_list") or []
    entries = [dict(d, server_id=s.get("server_id")) for s in servers for d in s.get("device", [])]
    size = env.get("RANK_SIZE", "")
    if size != str(len(entries)):
        raise RankFailure(
            "EI0004: The ranktable is invalid: RANK_SIZE=%s but it lists %d ranks" % (size, len(entries))
        )
    mine = [e for e in entries if str(e.get("rank_id")) == rank]
    if len(mine) != 1:
        raise RankFailure(
            "EI0004: The ranktable is invalid: RANK_ID=%s appears %d times in it" % (rank, len(mine))
        )
    return mine[0]


def check_entry(
    entry: Dict[str, Any], device: int, address: str, rank: str, sdid: Optional[int] = None
) -> None:
    """HCCL's view: this rank's entry names this host (by IP), the bound device and its NIC's IP, and on
    a SuperPoD (``sdid``: the chip's super device id as npu-smi reports it) that id."""
    problems = []
    if sdid is not None and str(entry.get("super_device_id")) != str(sdid):
        problems.append(
            "super_device_id %s but device %d's SDID is %d" % (entry.get("super_device_id"), device, sdid)
        )
    if entry.get("server_id") != address:
        problems.append("server_id %r is not this host's IP %s" % (entry.get("server_id"), address))
    if str(entry.get("device_id")) != str(device):
        problems.append("device_id %s but this process runs on device %d" % (entry.get("device_id"), device))
    nic = hccn_addresses().get(device)
    if entry.get("device_ip") != nic:
        problems.append(
            "device_ip %s but device %d's NIC is %s (/etc/hccn.conf)" % (entry.get("device_ip"), device, nic)
        )
    if problems:
        raise RankFailure(
            "EI0004: The ranktable is invalid for rank %s: %s.\n        Solution: Try again with a valid "
            "cluster configuration in the ranktable file." % (rank, "; ".join(problems))
        )
