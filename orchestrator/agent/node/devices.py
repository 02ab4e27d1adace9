"""The NPUs of this node as the node agent sees them (stdlib, Python 3.9+; node side).

- Tools: ``npu-smi`` on PATH, else /usr/local/sbin or /usr/local/bin; ``hccn_tool`` on PATH, else
  ``<ascend root>/driver/tools/``, else /usr/local/Ascend/driver/tools/; run with LC_ALL=C.
- npu-smi's output is read by the controller's own parser (orchestrator/ascend/npu_smi.py), one copy,
  shipped inside the agent's zipapp (``orchestrator.agent.bundle``).
- Holders: npu-smi's process table matched by physical device id (the chip's Phy-ID where npu-smi prints
  one, else the NPU id), each pid resolved here: alive (with its user and command) or gone (exited, or a
  host pid that this container cannot see: npu-smi prints host pids in containers).
- Device map: physical id -> logic id (``npu-smi info -m``; renumbered from 0 in a container) -> the
  index a process sees under ASCEND_RT_VISIBLE_DEVICES (a list of logic ids), which DEVICE_ID carries.
  The driver numbers the chips once per boot: the map is kept (``<workdir>/cache/npu-map.json``) for
  as long as the boot, the npu-smi binary and the chips ``npu-smi info`` lists are the same, so a
  start reads npu-smi once, not twice.
- Release: an NPU is usable only once npu-smi stops listing a process on it, which lags its exit.
- Holds: the NPUs (rank slots on ``cpu``) and ports a job's spec reserves; jobs conflict only where
  those overlap (a spec without devices holds the whole node), and the busy message names job and what.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
import time
import types
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from orchestrator.agent.node.base import Json, read_json, write_json

ASCEND_ROOT = "/usr/local/Ascend"
NPU_SMI_PLACES = ("/usr/local/sbin/npu-smi", "/usr/local/bin/npu-smi")
ENV_VISIBLE = "ASCEND_RT_VISIBLE_DEVICES"
POLL_S = 0.5  # between two npu-smi calls while waiting (npu-smi itself takes a while; never run two at once)


def parsers() -> types.ModuleType:
    """orchestrator/ascend/npu_smi.py: one copy, the controller's, shipped inside the agent's zipapp."""
    from orchestrator.ascend import npu_smi

    return npu_smi


# ---------------------------------------------------------------- tools
def tool_places(name: str, ascend_root: Optional[str] = None) -> List[str]:
    """Where ``name`` is looked for after PATH."""
    if name == "npu-smi":
        return list(NPU_SMI_PLACES)
    roots = [(ascend_root or ASCEND_ROOT).rstrip("/"), ASCEND_ROOT]
    return list(dict.fromkeys(f"{r}/driver/tools/{name}" for r in roots))


def find_tool(name: str, ascend_root: Optional[str] = None) -> Optional[str]:
    """The path of ``name``: PATH first, then :func:`tool_places`; None if absent."""
    import shutil  # here: most agent calls look for no tool

    found = shutil.which(name)
    if found:
        return found
    return next(
        (p for p in tool_places(name, ascend_root) if os.path.isfile(p) and os.access(p, os.X_OK)), None
    )


def run(exe: str, *args: str, timeout: float = 30.0) -> Tuple[Optional[str], str]:
    """(stdout, "") of ``exe args`` with LC_ALL=C, or (None, why) when it could not run or failed."""
    env = dict(os.environ, LC_ALL="C", LANG="C")
    try:
        out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"{exe} {' '.join(args)}: {type(e).__name__}: {e}"
    if out.returncode != 0:
        text = (out.stdout + out.stderr).strip().splitlines()
        return None, f"{exe} {' '.join(args)} exited {out.returncode}: {' / '.join(text[-3:])}"
    return out.stdout, ""


def read(exe: Optional[str], query: str = "info") -> Tuple[Any, str]:
    """``npu-smi info`` (NpuSmiInfo) or ``npu-smi info -m`` (ChipMapping rows) parsed; (None, why) if not."""
    if exe is None:
        return None, "npu-smi not found"
    args, parse = (
        (("info",), "parse_npu_smi_info") if query == "info" else (("info", "-m"), "parse_npu_smi_mapping")
    )
    text, error = run(exe, *args)
    if text is None:
        return None, error
    try:
        return getattr(parsers(), parse)(text), ""
    except ValueError as e:  # AscendParseError and AscendToolError are ValueErrors
        return None, str(e)


def as_json(value: Any) -> Any:
    """A parse result as plain JSON values (dataclasses as dicts, tuples as lists)."""
    import dataclasses  # only here: a start that reads no npu-smi does not import it

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return as_json(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(v) for v in value]
    return value


# ---------------------------------------------------------------- processes (/proc)
def alive(pid: Optional[int]) -> bool:
    """True if ``pid`` is a process here that has not exited (not a zombie)."""
    try:
        with open(f"/proc/{int(pid or 0)}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError, ValueError):
        return False


def uid_of(pid: int) -> Optional[int]:
    """The real uid running ``pid``; None if unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(next(line.split()[1] for line in f if line.startswith("Uid:")))
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def user_of(pid: int) -> Optional[str]:
    """The name (or uid) of the user running ``pid``; None if unknown."""
    uid = uid_of(pid)
    if uid is None:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return " ".join(a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a)
    except OSError:
        return ""


def resolve(pid: int, container_pid: Optional[int] = None) -> Json:
    """What this node knows of a pid npu-smi lists (``container_pid``: its "Process id in container")."""
    for local in (pid, container_pid):
        if local and alive(local):
            return {"state": "running", "local_pid": local, "user": user_of(local), "cmd": command_of(local)}
    return {"state": "exited", "local_pid": None, "user": None, "cmd": ""}


# ---------------------------------------------------------------- holders and release
def physical_ids(info: Any) -> Dict[Tuple[int, int], int]:
    """(NPU id, chip id) -> physical device id: the chip's Phy-ID if printed (Atlas A3), else the NPU id."""
    return {
        (n.npu_id, c.chip_id): n.npu_id if c.phy_id is None else c.phy_id for n in info.npus for c in n.chips
    }


def holders(info: Any, devices: Optional[Iterable[int]] = None) -> List[Json]:
    """Rows of npu-smi's process table on the physical ``devices`` (every device if None), pids resolved."""
    wanted, phys, out = None if devices is None else set(devices), physical_ids(info), []
    for p in info.processes:
        device = phys.get((p.npu_id, p.chip_id), p.npu_id)
        if wanted is None or device in wanted:
            row = {"npu": p.npu_id, "chip": p.chip_id, "device": device, "pid": p.pid,
                   "container_pid": p.container_pid, "name": p.name, "memory_mb": p.memory_mb}  # fmt: skip
            out.append(dict(row, **resolve(p.pid, p.container_pid)))
    return out


def pending(rows: List[Json], own: Iterable[int] = ()) -> List[Json]:
    """Rows still to be released: pids that are gone, or that were ``own`` (a job's processes)."""
    mine = set(own)
    return [r for r in rows if r["state"] == "exited" or r["pid"] in mine or r.get("container_pid") in mine]


def wait_released(exe: Optional[str], devices: Iterable[int], own: Iterable[int], timeout: float,
                  clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                  first_look: Any = None) -> Json:  # fmt: skip
    """Wait, at most ``timeout`` s, until npu-smi lists no :func:`pending` row on ``devices``.
    ``first_look``: an ``npu-smi info`` just read, taken as the first look (one call fewer).

    ``free`` is True when released (``waited_s`` 0 when nothing was pending at the first look), False
    when rows were still listed at the end (``listed``), None when npu-smi is absent or failed
    (``error``): nothing to wait for, or nothing we can know."""
    devices, t0 = sorted(set(devices)), clock()
    answer: Json = {
        "devices": devices,
        "npu_smi": exe,
        "free": True,
        "waited_s": 0.0,
        "listed": [],
        "error": "",
    }
    if not devices:
        return answer
    if exe is None:
        return dict(answer, free=None, error="npu-smi not found")
    first = True
    while True:
        info, error = (first_look, "") if first and first_look is not None else read(exe)
        left = pending(holders(info, devices), own) if info is not None else []
        waited = 0.0 if first and not left else round(clock() - t0, 3)
        answer.update(waited_s=waited, listed=left, error=error)
        if info is None:
            return dict(answer, free=None)
        if not left or clock() - t0 >= timeout:
            return dict(answer, free=not left)
        first = False
        sleep(min(POLL_S, max(0.0, timeout - (clock() - t0))))


# ---------------------------------------------------------------- device ids
def visible_list(value: Optional[str]) -> Optional[List[int]]:
    """ASCEND_RT_VISIBLE_DEVICES as CANN reads it: comma-separated logic ids, up to the first invalid one."""
    if value is None:
        return None
    ids: List[int] = []
    for token in value.split(","):
        if not token.isdigit():
            break
        ids.append(int(token))
    return ids


def logic_ids(
    exe: Optional[str], info: Any = None, cache: Optional[str] = None
) -> Tuple[Optional[Dict[int, int]], str]:
    """physical id -> logic id from ``npu-smi info -m`` (chips without a logic id skipped), with ``info``
    (``npu-smi info``) giving the chips' Phy-IDs where it prints them; (None, why) if unknown.

    ``cache``: a file keeping the map while :func:`map_key` stays the same (read instead of npu-smi)."""
    key = map_key(exe, info) if cache and exe and info is not None else None
    kept = read_json(cache) if cache and key else None
    if isinstance(kept, dict) and kept.get("key") == key:
        try:
            return {int(k): int(v) for k, v in kept["map"].items()}, ""
        except (AttributeError, KeyError, TypeError, ValueError):
            pass  # a damaged cache: ask npu-smi
    rows, error = read(exe, "map")
    if rows is None:
        return None, error
    phys = physical_ids(info) if info is not None else {}
    logic = {phys.get((r.npu_id, r.chip_id), r.npu_id): r.logic_id for r in rows}
    if cache and key:
        with contextlib.suppress(OSError):  # a map that cannot be kept is read again next time
            write_json(cache, {"key": key, "map": {str(k): v for k, v in logic.items()}})
    return logic, ""


def map_key(exe: Optional[str], info: Any) -> Optional[List[Any]]:
    """What the driver's chip numbering depends on: this boot, the npu-smi binary (a driver upgrade
    replaces it) and the chips ``npu-smi info`` lists (a container sees its own); None if unknown."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        st = os.stat(exe or "")
    except OSError:
        return None
    chips = sorted([n.npu_id, n.name, c.chip_id, c.bus_id, c.phy_id] for n in info.npus for c in n.chips)
    tool = [os.path.realpath(exe or ""), st.st_ino, st.st_size, st.st_mtime_ns]
    return [boot, tool, info.driver_version, chips]


def device_ids(
    devices: Iterable[int], logic: Optional[Dict[int, int]], visible: Optional[str]
) -> Dict[int, Json]:
    """For each physical device: its logic id and the DEVICE_ID a process must be given (ValueError if none).

    Without ASCEND_RT_VISIBLE_DEVICES a process sees every logic id, so DEVICE_ID is the logic id; with it,
    the process sees only the listed logic ids, renumbered from 0 (CANN), and DEVICE_ID is that index
    (MindSpore maps it back through the sorted list). Without npu-smi, logic ids equal physical ids."""
    seen = visible_list(visible)
    if seen is not None and seen != sorted(seen):
        raise ValueError(f"{ENV_VISIBLE}={visible}: CANN accepts the ids in ascending order only")
    out = {}
    for device in sorted(set(devices)):
        if logic is not None and device not in logic:
            listed = ", ".join(str(d) for d in sorted(logic)) or "none"
            raise ValueError(f"NPU {device} of the plan is not on this node: npu-smi info -m lists {listed}")
        lid = device if logic is None else logic[device]
        if seen is not None and lid not in seen:
            raise ValueError(
                f"NPU {device} (logic id {lid}) is not visible to the ranks: {ENV_VISIBLE}={visible}"
            )
        out[device] = {"logical": lid, "device_id": lid if seen is None else seen.index(lid)}
    return out


def map_rank_devices(
    spec: Json, exe: Optional[str], info: Any, agent_env: Dict[str, str], cache: Optional[str] = None
) -> Optional[Json]:
    """Give each rank of ``spec`` the DEVICE_ID its process must carry (:func:`device_ids`), in place.

    A rank's planned device is physical (``device``, as in the rank table); DEVICE_ID (and a
    ``--device_id`` argument) planned as that id is rewritten when the process sees the device under
    another number. ASCEND_RT_VISIBLE_DEVICES is the rank's own, else the agent's when ranks inherit it.
    ``cache``: where the device map is kept (see :func:`logic_ids`). The map (None when no rank names a
    device); ValueError when a device cannot be seen."""
    ranks = [p for p in spec.get("ranks", []) if p.get("device") is not None]
    if not ranks:
        return None
    logic, error = logic_ids(exe, info, cache) if exe else (None, "npu-smi not found")
    out: Json = {
        "source": "npu-smi info -m" if logic is not None else "identity",
        "error": error,
        "ranks": {},
    }
    for p in ranks:
        env, device = p.setdefault("env", {}), int(p["device"])
        inherited = agent_env.get(ENV_VISIBLE) if spec.get("inherit_env", True) else None
        visible = env[ENV_VISIBLE] if ENV_VISIBLE in env else inherited
        try:
            ids = device_ids([device], logic, visible)[device]
        except ValueError as e:
            raise ValueError(f"rank {p.get('rank')}: {e}") from None
        old, new = str(device), str(ids["device_id"])
        if env.get("DEVICE_ID") == old:
            env["DEVICE_ID"] = new
            if new != old:  # the rank table keeps the physical id: the model package checks against it
                env["ORCHESTRATE_PHYSICAL_DEVICE_ID"] = old
        argv = p.get("argv", [])
        for i in range(len(argv) - 1):
            if argv[i] == "--device_id" and argv[i + 1] == old:
                argv[i + 1] = new
        out["ranks"][str(p.get("rank"))] = dict(ids, device=device, visible=visible)
    return out


# ---------------------------------------------------------------- what a job holds on this node
def holds(spec: Optional[Json]) -> Tuple[Optional[List[int]], List[int]]:
    """(devices, ports) a job spec reserves on this node. Devices are NPU ids (rank slots on ``cpu``);
    None when the spec lists none: such a job (or a spec we cannot read) holds the whole node."""
    spec = spec or {}
    devices = sorted({int(d) for d in spec.get("devices") or []})
    return devices or None, sorted({int(p) for p in spec.get("ports") or []})


def overlap(need: Tuple[Optional[List[int]], List[int]], held: Tuple[Optional[List[int]], List[int]]) -> Optional[Json]:  # fmt: skip
    """What of ``need`` another job's ``held`` takes ({"npus": [...] or None for all, "ports": [...]});
    None when they are disjoint. A side without devices takes (or needs) the whole node."""
    (nd, np_), (hd, hp) = need, held
    if nd is None or hd is None:
        devices: Optional[List[int]] = None if nd is None and hd is None else (nd if hd is None else hd)
    else:
        devices = sorted(set(nd) & set(hd))
    ports = sorted(set(np_) & set(hp))
    if nd is not None and hd is not None and not devices and not ports:
        return None
    return {"npus": devices, "ports": ports}


def describe(npus: Optional[List[int]], ports: List[int], unit: str = "NPU") -> str:
    """``NPU 0, 1 and port 8118`` / ``the whole node`` (``npus`` None)."""
    parts = [
        "the whole node" if npus is None else f"{unit} {', '.join(str(d) for d in npus)}" if npus else ""
    ]
    parts.append(f"port {', '.join(str(p) for p in ports)}" if ports else "")
    return " and ".join(p for p in parts if p) or "nothing"


def busy_message(
    conflicts: List[Json], workdir: str, waited_s: Optional[float] = None, unit: str = "NPU"
) -> str:
    """One message naming every conflict (from the agent's ``find_conflicts`` or an unreleased NPU): for a
    job of ours, the job and the NPUs (``unit``: rank slots on ``cpu``) and ports it holds that are needed."""
    parts, jobs = [], {}
    for c in conflicts:
        if c["source"] == "record":
            jobs.setdefault(str(c["job"]), c)
    for job, c in sorted(jobs.items()):
        held = describe(c.get("npus", None), c.get("ports") or [], unit)
        parts.append(f"job {job} of this orchestrator still runs and holds {held}, which this job needs "
                     "(`orchestrate stop` it, or launch --force stops it)")  # fmt: skip
    for c in conflicts:
        who = ", ".join(
            x for x in (f"user {c['user']}" if c.get("user") else "", c.get("cmd") or c.get("name")) if x
        )
        if c["source"] == "environment":
            parts.append(f"pid {c['pid']} carries the marks of job {c['job']}, which is not recorded under "
                         f"{workdir}: stop it yourself if it is yours (--force stops only jobs recorded here)")  # fmt: skip
        elif c["source"] == "port":
            parts.append(f"port {c['port']} is in use ({c.get('error') or 'bind failed'}) by a process that is not "
                         "a job recorded here: free it, or plan with another port (--force never stops it)")  # fmt: skip
        elif c["source"] == "npu-smi" and c.get("state") == "running":
            parts.append(f"NPU {c['npu']} is held by pid {c['pid']} ({who or 'unknown'}), which this orchestrator "
                         "did not start: free the NPU or plan without it (--force never stops it)")  # fmt: skip
        elif c["source"] == "npu-smi":
            after = f" after waiting {waited_s:.1f} s" if waited_s is not None else ""
            parts.append(f"npu-smi still lists pid {c['pid']} on NPU {c['npu']}{after}: the process has exited "
                         "(or is a host pid this container cannot see) and the driver has not released the NPU "
                         "yet; try again shortly")  # fmt: skip
    return "node busy: " + "; ".join(parts)


def ports_in_use(ports: Iterable[int]) -> List[Json]:
    """Conflicts (``source`` port) for each of ``ports`` that cannot be bound here (a listener holds it)."""
    import socket

    out = []
    for port in sorted(set(ports)):
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
        except OSError as e:
            out.append({"source": "port", "pid": None, "job": None, "port": port, "error": e.strerror})
        finally:
            s.close()
    return out
