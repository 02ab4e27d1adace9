"""How a distributed run was launched, read from the environment (no mindspore import).

Two launch styles (see the cluster spec, §2):
- dynamic cluster: MS_ROLE (MS_SCHED | MS_WORKER), MS_SCHED_HOST, MS_SCHED_PORT, MS_WORKER_NUM, and for a
  worker MS_NODE_ID (its rank); the only style on the CPU backend.
- rank table (Ascend, HCCL): RANK_TABLE_FILE, RANK_ID, DEVICE_ID, RANK_SIZE.
:func:`detect` returns a :class:`LaunchEnv` or raises :class:`ParallelEnvError` naming every missing or
inconsistent variable at once.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import List, Mapping, Optional

from .errors import IFlytekSparkError

DYNAMIC_VARS = ("MS_ROLE", "MS_SCHED_HOST", "MS_SCHED_PORT", "MS_WORKER_NUM", "MS_NODE_ID")
RANK_TABLE_VARS = ("RANK_TABLE_FILE", "RANK_ID", "DEVICE_ID", "RANK_SIZE")
PHYSICAL_DEVICE_VAR = "ORCHESTRATE_PHYSICAL_DEVICE_ID"  # set by the node agent when DEVICE_ID is renumbered
ROLES = ("MS_SCHED", "MS_WORKER")


class ParallelEnvError(IFlytekSparkError, RuntimeError):
    """--use_parallel True, but the launcher's environment is missing or inconsistent."""

    exit_code = 2


@dataclass(frozen=True)
class LaunchEnv:
    """The launch style and this process's place in it (rank is None for the scheduler)."""

    style: str  # "dynamic_cluster" or "rank_table"
    world_size: int
    rank: Optional[int]
    role: str = "MS_WORKER"  # MS_SCHED for the dynamic cluster's scheduler process

    @property
    def is_scheduler(self) -> bool:
        return self.role == "MS_SCHED"


def _int(env: Mapping[str, str], name: str, problems: List[str], low: int = 0) -> Optional[int]:
    raw = env.get(name)
    if raw is None or raw == "":
        problems.append(f"{name} is not set")
        return None
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name}={raw!r} is not an integer")
        return None
    if value < low:
        problems.append(f"{name}={value} must be >= {low}")
        return None
    return value


def _dynamic(env: Mapping[str, str]) -> LaunchEnv:
    problems: List[str] = []
    role = env["MS_ROLE"]
    if role not in ROLES:
        problems.append(f"MS_ROLE={role!r} must be one of {', '.join(ROLES)}")
    if not env.get("MS_SCHED_HOST"):
        problems.append("MS_SCHED_HOST is not set")
    port = _int(env, "MS_SCHED_PORT", problems, low=1)
    if port is not None and port > 65535:
        problems.append(f"MS_SCHED_PORT={port} is not a TCP port (1-65535)")
    workers = _int(env, "MS_WORKER_NUM", problems, low=1)
    rank = None
    if role == "MS_WORKER":
        rank = _int(env, "MS_NODE_ID", problems)
        if rank is not None and workers is not None and rank >= workers:
            problems.append(f"MS_NODE_ID={rank} must be below MS_WORKER_NUM={workers}")
    _raise("dynamic cluster (MS_ROLE is set)", problems)
    return LaunchEnv("dynamic_cluster", workers or 0, rank, role)


def _rank_table(env: Mapping[str, str]) -> LaunchEnv:
    problems: List[str] = []
    path = env["RANK_TABLE_FILE"]
    rank = _int(env, "RANK_ID", problems)
    device = _int(env, "DEVICE_ID", problems)
    size = _int(env, "RANK_SIZE", problems, low=1)
    # The rank table names physical devices; DEVICE_ID is the id the process sees, which differs under
    # ASCEND_RT_VISIBLE_DEVICES or a container's renumbering. The node agent then passes the physical id
    # as PHYSICAL_DEVICE_VAR; without it, a renumbered DEVICE_ID cannot be compared with the table.
    if PHYSICAL_DEVICE_VAR in env:
        device = _int(env, PHYSICAL_DEVICE_VAR, problems)
    elif env.get("ASCEND_RT_VISIBLE_DEVICES"):
        device = None
    if rank is not None and size is not None and rank >= size:
        problems.append(f"RANK_ID={rank} must be below RANK_SIZE={size}")
    devices = _table_devices(path, problems)
    if devices is not None:
        if size is not None and len(devices) != size:
            problems.append(f"RANK_SIZE={size} but {path} lists {len(devices)} device(s)")
        if rank is not None and rank not in devices:
            problems.append(f"RANK_ID={rank} is not a rank_id in {path}")
        elif rank is not None and device is not None and devices[rank] != device:
            problems.append(f"DEVICE_ID={device} but {path} gives rank {rank} device_id {devices[rank]}")
    _raise("rank table (RANK_TABLE_FILE is set)", problems)
    return LaunchEnv("rank_table", size or 0, rank)


def _table_devices(path: str, problems: List[str]) -> Optional[dict]:
    """{rank_id: device_id} of an HCCL rank table (v1.0 server_list, or v1.2 with server_group_list)."""
    try:
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
    except (OSError, ValueError) as exc:
        problems.append(f"RANK_TABLE_FILE={path}: cannot read it as JSON ({exc})")
        return None
    servers = list(table.get("server_list") or [])
    for group in table.get("server_group_list") or []:
        servers += group.get("server_list") or []
    try:
        return {int(d["rank_id"]): int(d["device_id"]) for s in servers for d in s.get("device", [])}
    except (KeyError, TypeError, ValueError) as exc:
        problems.append(f"RANK_TABLE_FILE={path}: a device entry lacks rank_id/device_id ({exc})")
        return None


def _raise(style: str, problems: List[str]) -> None:
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ParallelEnvError(
            f"--use_parallel True with a {style}, but the environment is inconsistent:\n{lines}"
        )


def detect(env: Optional[Mapping[str, str]] = None, device_target: str = "Ascend") -> LaunchEnv:
    """The launch environment of this process; MS_ROLE (dynamic cluster) wins over RANK_TABLE_FILE."""
    env = os.environ if env is None else env
    if env.get("MS_ROLE"):
        return _dynamic(env)
    if env.get("RANK_TABLE_FILE"):
        if device_target != "Ascend":
            raise ParallelEnvError(
                f"RANK_TABLE_FILE is set, but rank-table launch needs Ascend (HCCL) and the device is "
                f"{device_target}; launch with the dynamic cluster ({', '.join(DYNAMIC_VARS)}) instead"
            )
        return _rank_table(env)
    raise ParallelEnvError(
        "--use_parallel True, but no launcher environment was found. Set either the dynamic cluster "
        f"variables ({', '.join(DYNAMIC_VARS)}) or the rank table variables ({', '.join(RANK_TABLE_VARS)}), "
        "or run with --use_parallel False"
    )
