"""Rank table JSON: deterministic writing and strict reading.

Written JSON has a fixed key order (version, server_count, status, server_list; per server
server_id, host_nic_ip (1.0) or host_ip (1.2), device; per device device_id, device_ip,
super_device_id (1.2), rank_id; then super_pod_list for 1.2), 4-space indent as mindformers'
hccl_tools writes it, every value a string, and a trailing newline: the same table gives the same
bytes. Reading accepts any key order, ignores unknown keys, and reports every structural problem at
once as an :class:`InputError`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Union

from orchestrator.errors import InputError, Problem
from orchestrator.ranktable.model import (
    HOST_NIC_RESERVED,
    VERSIONS,
    RankDevice,
    RankServer,
    RankTable,
    SuperPod,
)

_STRING_FIX = 'every value of a rank table is a JSON string, e.g. "0" not 0'


def table_dict(table: RankTable) -> dict[str, Any]:
    """The JSON object of ``table`` in the fixed key order."""
    v12 = table.version == "1.2"
    servers = []
    for s in table.servers:
        entry: dict[str, Any] = {"server_id": s.server_id}
        if v12:
            if s.host_ip is not None:
                entry["host_ip"] = s.host_ip
        else:
            entry["host_nic_ip"] = s.host_nic_ip
        devices = []
        for d in s.devices:
            dev = {"device_id": d.device_id, "device_ip": d.device_ip}
            if v12 and d.super_device_id is not None:
                dev["super_device_id"] = d.super_device_id
            dev["rank_id"] = d.rank_id
            devices.append(dev)
        entry["device"] = devices
        servers.append(entry)
    out: dict[str, Any] = {
        "version": table.version,
        "server_count": str(len(table.servers)),
        "status": table.status,
        "server_list": servers,
    }
    if v12:
        out["super_pod_list"] = [
            {"super_pod_id": p.super_pod_id, "server_list": [{"server_id": sid} for sid in p.server_ids]}
            for p in table.super_pods
        ]
    return out


_STR = json.encoder.encode_basestring  # the C encoder when available, as json.dumps uses


def _indented(value: Any, pad: str, out: list[str]) -> None:
    """``value`` (str, list, dict of those) as ``json.dumps(indent=4, ensure_ascii=False)`` writes it."""
    if isinstance(value, str):
        out.append(_STR(value))
        return
    inner = pad + "    "
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        sep = "{" + inner
        for key, item in value.items():
            if isinstance(item, str):  # most values: no call
                out.append(sep + _STR(key) + ": " + _STR(item))
            else:
                out.append(sep + _STR(key) + ": ")
                _indented(item, inner, out)
            sep = "," + inner
        out.append(pad + "}")
    elif not value:
        out.append("[]")
    else:
        sep = "[" + inner
        for item in value:
            out.append(sep)
            _indented(item, inner, out)
            sep = "," + inner
        out.append(pad + "]")


def rank_table_json(table: RankTable) -> str:
    """Deterministic JSON text of ``table`` (ends with a newline): the bytes of
    ``json.dumps(table_dict(table), indent=4, ensure_ascii=False)``, written in one pass."""
    out: list[str] = []
    _indented(table_dict(table), "\n", out)
    return "".join(out) + "\n"


def write_rank_table(table: RankTable, path: Union[str, Path]) -> Path:
    """Write ``table`` to exactly ``path`` (temp file then rename, mode 0644); returns the path."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(
            [Problem(str(path), "output", f"folder {path.parent} does not exist", "create it first")]
        )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(rank_table_json(table))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class _Reader:
    """Walks the decoded JSON, collecting a Problem for every missing or mistyped value."""

    def __init__(self, source: str):
        self.source, self.problems = source, []

    def bad(self, field: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(self.source, field, message, fix))

    def string(
        self, obj: dict, key: str, where: str, required: bool = True, digits: bool = False
    ) -> Optional[str]:
        field = f"{where}.{key}" if where else key
        if key not in obj:
            if required:
                self.bad(field, "missing", f'add "{key}"')
            return None
        value = obj[key]
        if not isinstance(value, str):
            self.bad(field, f"{value!r} is not a string", _STRING_FIX)
            return None
        if digits and not value.isdigit():
            self.bad(field, f"{value!r} is not a non-negative integer", "use the decimal number as a string")
            return None
        return value

    def items(self, obj: dict, key: str, where: str) -> list:
        value = obj.get(key)
        if not isinstance(value, list):
            self.bad(f"{where}.{key}" if where else key, "missing or not a list", f'add "{key}": [...]')
            return []
        return value


def _device(r: _Reader, raw: Any, where: str) -> Optional[RankDevice]:
    if not isinstance(raw, dict):
        r.bad(where, "not an object")
        return None
    dev_id = r.string(raw, "device_id", where, digits=True)
    ip = r.string(raw, "device_ip", where)
    rank = r.string(raw, "rank_id", where, digits=True)
    sup = r.string(raw, "super_device_id", where, required=False)
    if dev_id is None or ip is None or rank is None:
        return None
    return RankDevice(dev_id, ip, rank, sup)


def _server(r: _Reader, raw: Any, where: str) -> Optional[RankServer]:
    if not isinstance(raw, dict):
        r.bad(where, "not an object")
        return None
    sid = r.string(raw, "server_id", where)
    nic = r.string(raw, "host_nic_ip", where, required=False)
    host_ip = r.string(raw, "host_ip", where, required=False)
    devices = [_device(r, d, f"{where}.device[{i}]") for i, d in enumerate(r.items(raw, "device", where))]
    if sid is None or any(d is None for d in devices):
        return None
    return RankServer(sid, tuple(devices), nic if nic is not None else HOST_NIC_RESERVED, host_ip)


def _super_pods(r: _Reader, raw: dict) -> tuple[SuperPod, ...]:
    pods = []
    for i, pod in enumerate(r.items(raw, "super_pod_list", "")):
        where = f"super_pod_list[{i}]"
        if not isinstance(pod, dict):
            r.bad(where, "not an object")
            continue
        pid = r.string(pod, "super_pod_id", where)
        ids = [
            r.string(s, "server_id", f"{where}.server_list[{j}]") if isinstance(s, dict) else None
            for j, s in enumerate(r.items(pod, "server_list", where))
        ]
        if pid is not None and all(x is not None for x in ids):
            pods.append(SuperPod(pid, tuple(ids)))
    return tuple(pods)


def parse_rank_table(text: str, source: str = "<rank table>") -> RankTable:
    """A rank table from JSON text; InputError lists every structural problem (file, field, fix)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError([Problem(source, "json", exc.msg, "fix the JSON syntax", exc.lineno)]) from None
    r = _Reader(source)
    if not isinstance(raw, dict):
        raise InputError([Problem(source, "json", "top level is not an object", 'write {"version": ...}')])
    version = r.string(raw, "version", "")
    if version is not None and version not in VERSIONS:
        r.bad("version", f"{version!r} is not supported", f"use one of {', '.join(VERSIONS)}")
    status = r.string(raw, "status", "")
    count = r.string(raw, "server_count", "", digits=True)
    servers = [_server(r, s, f"server_list[{i}]") for i, s in enumerate(r.items(raw, "server_list", ""))]
    if count is not None and int(count) != len(servers):
        r.bad(
            "server_count",
            f"says {count} but server_list has {len(servers)} servers",
            f'set "server_count": "{len(servers)}"',
        )
    pods = _super_pods(r, raw) if version == "1.2" else ()
    if r.problems:
        raise InputError(r.problems)
    return RankTable(version, tuple(servers), status, pods)


def load_rank_table(path: Union[str, Path]) -> RankTable:
    """Read and structurally validate the rank table at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            [Problem(str(path), "file", f"cannot read: {exc.strerror or exc}", "check the path")]
        ) from None
    return parse_rank_table(text, str(path))
