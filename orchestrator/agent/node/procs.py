"""This node's processes as /proc shows them: state, marks, groups; terminating them (node side)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any, Callable, Dict, List, Optional, Set

from orchestrator.agent.node.base import ENV_JOB, ENV_RANK, ENV_ROLE, ENV_SCOPE, TERMINAL, Json


def proc_stat(pid: Any) -> Optional[Json]:
    """State, process group, start time and CPU time (clock ticks), resident pages of ``pid``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()  # fields 3.. of proc(5); the name may hold spaces
    ticks, rss = int(fields[11]) + int(fields[12]), int(fields[21])
    return {"state": fields[0], "pgid": int(fields[2]), "ticks": ticks, "start": int(fields[19]), "rss": rss}


def is_alive(pid: Optional[int], start: Optional[int] = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, when given, started at ``start`` (no pid reuse)."""
    st = proc_stat(pid) if pid else None
    return bool(st) and st["state"] != "Z" and (start is None or st["start"] == start)


def proc_read(pid: Any, name: str) -> List[str]:
    """A NUL-separated /proc file (cmdline, environ) as strings; [] if unreadable."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/{name}", "rb") as f:
        return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    return []


def proc_marks(pid: int) -> Dict[str, str]:
    """The ORCHESTRATE_* variables a process started with (empty if none or unreadable)."""
    env = proc_read(pid, "environ")
    return dict(kv.split("=", 1) for kv in env if kv.startswith("ORCHESTRATE_") and "=" in kv)


def netns(pid: Any) -> Optional[str]:
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/{pid}/ns/net")
    return None


def scan_marked(job: Optional[str] = None) -> List[Json]:
    """Live processes of this node started by an agent (of ``job`` if given), except this one."""
    here, scope, found = netns("self"), os.environ.get(ENV_SCOPE), []
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        marks = proc_marks(pid) if pid != os.getpid() else {}
        ours = ENV_JOB in marks and job in (None, marks[ENV_JOB]) and scope in (None, marks.get(ENV_SCOPE))
        st = proc_stat(pid) if ours else None
        if st and st["state"] != "Z" and netns(pid) in (here, None):
            found.append({"pid": pid, "pgid": st["pgid"], "job": marks[ENV_JOB], "role": marks.get(ENV_ROLE, ""),
                          "rank": marks.get(ENV_RANK, ""), "cmd": " ".join(proc_read(pid, "cmdline"))})  # fmt: skip
    return found


def live_in(pgids: Set[int], pids: Set[int]) -> Set[int]:
    """Live (non-zombie) processes that are in ``pids`` or belong to a group in ``pgids``."""
    candidates = [int(p) for p in os.listdir("/proc") if p.isdigit()] if pgids else pids
    stats = ((pid, proc_stat(pid)) for pid in candidates)
    return {pid for pid, st in stats if st and st["state"] != "Z" and (pid in pids or st["pgid"] in pgids)}


def terminate(pgids: Set[int], pids: Set[int], grace: float, reap: Optional[Callable] = None) -> Json:
    """TERM groups and processes, wait up to ``grace`` s, KILL what is left: {pid: last signal sent}."""
    groups, singles = set(pgids) - {os.getpgrp(), 0, 1}, set(pids) - {os.getpid()}
    sent: Json = {}
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 3.0)):
        left = live_in(groups, singles)
        if not left:
            break
        sent.update({str(p): sig.name[3:] for p in left})
        singles |= left
        for target, kill in [(g, os.killpg) for g in groups] + [(p, os.kill) for p in singles]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(target, sig)
        deadline = time.time() + wait
        while time.time() < deadline:
            if reap:
                reap()
            if not live_in(groups, singles):
                break
            time.sleep(0.05)
    return sent


def usage(pids: List[int], sample: float) -> Dict[int, Json]:
    """CPU % over ``sample`` s (0: over the process's life) and resident memory (bytes) of live pids."""
    first = {p: proc_stat(p) if sample > 0 else {"ticks": 0} for p in pids}
    time.sleep(sample if pids else 0)
    out, hz, page = {}, os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    for pid, a in first.items():
        b = proc_stat(pid)
        if a and b:
            seconds = sample if sample > 0 else max(uptime - b["start"] / hz, 1e-3)
            cpu = 100 * (b["ticks"] - a["ticks"]) / hz / seconds
            out[pid] = {"cpu_percent": round(cpu, 1), "rss_bytes": b["rss"] * page}
    return out


def job_state(st: Json) -> str:
    if is_alive(st.get("supervisor_pid"), st.get("supervisor_start")):
        return "stopping" if st.get("stopping") and st["state"] not in TERMINAL else st["state"]
    return st["state"] if st["state"] in TERMINAL else "unknown"
