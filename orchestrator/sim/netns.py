"""Low-level Linux helpers: `ip` commands, namespaces, and the processes inside a namespace."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Sequence

import psutil

from orchestrator.errors import NotRoot, SimError

NSENTER_ALL = ("-m", "-u", "-n", "-p", "-w")  # mount, UTS, net, PID namespaces; the target's cwd


def require_root(what: str = "the simulated cluster") -> None:
    if os.geteuid() != 0:
        raise NotRoot(f"{what} needs root (network namespaces, mounts): run as root, e.g. with sudo")


def run(argv: Sequence[str], check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a host command; a failure raises SimError with the command and its stderr."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise SimError(
            f"`{' '.join(argv)}` exited {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["ip", *args], check=check)


def netns_list() -> list[str]:
    return sorted(p.name for p in Path("/run/netns").iterdir()) if Path("/run/netns").is_dir() else []


def link_names() -> list[str]:
    """Names of the host's network interfaces."""
    out = ip("-o", "link", "show").stdout
    return [line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines() if line.strip()]


def link_is_up(name: str) -> bool:
    try:
        flags = int(Path(f"/sys/class/net/{name}/flags").read_text(), 16)
    except OSError:
        return False
    return bool(flags & 0x1)  # IFF_UP


def host_networks() -> list[str]:
    """Every IPv4 network the host routes (in any namespace we can see from here: the main table)."""
    out = ip("-4", "-o", "route", "show", "table", "all").stdout
    return [line.split()[0] for line in out.splitlines() if line and line.split()[0][0].isdigit()]


def netns_pids(netns: str) -> list[int]:
    """Host pids of the processes whose network namespace is ``netns``."""
    proc = ip("netns", "pids", netns, check=False)
    return [int(p) for p in proc.stdout.split()] if proc.returncode == 0 else []


def _ns_id(pid: int, kind: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def pidns_members(init_pid: int) -> list[int]:
    """Host pids of every process in the PID namespace whose init is ``init_pid`` (init first)."""
    target = _ns_id(init_pid, "pid")
    if target is None:
        return []
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    members = [p for p in pids if p != init_pid and _ns_id(p, "pid") == target]
    return [init_pid, *sorted(members)]


def ns_pid_to_host(init_pid: int, ns_pid: int) -> int | None:
    """The host pid of the process known as ``ns_pid`` inside the node whose init is ``init_pid``."""
    for pid in pidns_members(init_pid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        line = next((x for x in status.splitlines() if x.startswith("NSpid:")), "")
        if line and int(line.split()[-1]) == ns_pid:
            return pid
    return None


def _process(pid: int | None) -> psutil.Process | None:
    try:
        return psutil.Process(pid) if pid else None
    except psutil.Error:
        return None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (empty once it is gone)."""
    proc = _process(pid)
    try:
        return [c.pid for c in proc.children()] if proc else []
    except psutil.Error:
        return []


def _status(pid: int | None) -> str:
    proc = _process(pid)
    try:
        return proc.status() if proc else ""
    except psutil.Error:
        return ""


def stopped(pid: int) -> bool:
    """True if ``pid`` is stopped by a signal (a frozen node)."""
    return _status(pid) in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)


def alive(pid: int | None) -> bool:
    """True if ``pid`` runs and is not a zombie."""
    return _status(pid) not in ("", psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def in_netns(pid: int | None, netns: str) -> bool:
    """True if ``pid`` runs inside network namespace ``netns`` (guards against reused pids)."""
    try:
        return alive(pid) and os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{netns}").st_ino
    except OSError:
        return False


def comm(pid: int) -> str:
    proc = _process(pid)
    try:
        return proc.name() if proc else ""
    except psutil.Error:
        return ""


def signal_all(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_gone(pids: Sequence[int], timeout: float = 10.0) -> list[int]:
    """Wait until none of ``pids`` runs; return the survivors."""
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [p for p in left if alive(p)]
    return left


def kill_netns_processes(netns: str, timeout: float = 10.0) -> None:
    """SIGKILL everything in ``netns`` until nothing is left."""
    deadline = time.monotonic() + timeout
    while pids := netns_pids(netns):
        signal_all(pids, signal.SIGKILL)
        wait_gone(pids, 2.0)
        if time.monotonic() > deadline:
            raise SimError(f"processes {pids} in {netns} survive SIGKILL")


def nsenter_argv(init_pid: int, argv: Sequence[str]) -> list[str]:
    """The command line that runs ``argv`` inside a node (all of its namespaces)."""
    return ["nsenter", "-t", str(init_pid), *NSENTER_ALL, "--", *argv]
