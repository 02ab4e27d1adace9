"""One simulated node at run time: its network plumbing, its init process, commands inside it.

What a node is made of on disk is :mod:`orchestrator.sim.node_files`. Its init (``node_init.py``, copied
into the cluster folder and run by the system Python, so no controller path is needed once it runs)
mounts the node's layers and hides the controller's paths in the node's own mount namespace.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional, Sequence

from orchestrator.errors import SimError
from orchestrator.sim import netns
from orchestrator.sim.node_files import node_dir, workdir_on_host
from orchestrator.sim.state import ClusterState, NodeState
from orchestrator.sim.tools import system_python

__all__ = ["node_dir", "workdir_on_host"]
INIT = Path(__file__).with_name("node_init.py")


def plumb(cluster: ClusterState, node: NodeState) -> None:
    """Create the node's network namespace and its veth into the cluster bridge, and address it."""
    ns = node.netns
    netns.ip("netns", "add", ns)
    netns.ip("link", "add", node.veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
    netns.ip("link", "set", node.veth, "master", cluster.bridge, "up")
    prefix = cluster.subnet.split("/")[1]
    netns.ip("-n", ns, "addr", "add", f"{node.address}/{prefix}", "dev", "eth0")
    netns.ip("-n", ns, "link", "set", "lo", "up")
    netns.ip("-n", ns, "link", "set", "eth0", "up")
    gateway = cluster.subnet.split("/")[0].rsplit(".", 1)[0] + ".1"
    netns.ip("-n", ns, "route", "add", "default", "via", gateway)


def start(cluster: ClusterState, node: NodeState) -> None:
    """Start the node's init in fresh mount/UTS/PID namespaces inside its network namespace.

    The launcher is double-forked (through ``sh``) so it belongs to no controller process, and its pids
    are recorded as soon as they are known.
    """
    d = node_dir(cluster, node)
    (d / "sshd.pid").unlink(missing_ok=True)
    init = cluster.dir / INIT.name
    if not init.exists():
        shutil.copyfile(INIT, init)
    argv = [
        "nsenter",
        f"--net=/run/netns/{node.netns}",
        "--",
        "unshare",
        "--uts",
        "--mount",
        "--pid",
        "--fork",
    ]
    argv += [
        "--mount-proc",
        "--propagation",
        "private",
        "--",
        system_python(),
        "-I",
        str(init),
        str(d / "init.json"),
    ]
    script = f'"$@" </dev/null >>{d / "init.log"} 2>&1 & echo $!'
    out = subprocess.run(["sh", "-c", script, "sh", *argv], capture_output=True, text=True, check=True)
    node.launcher_pid, node.init_pid = int(out.stdout.strip()), None
    cluster.save()
    deadline = time.monotonic() + 10
    while not (kids := netns.children(node.launcher_pid)):
        if not netns.alive(node.launcher_pid) or time.monotonic() > deadline:
            raise SimError(f"node {node.hostname} did not start: {_log_tail(d)}")
        time.sleep(0.005)
    node.init_pid = kids[0]
    cluster.save()


def _log_tail(d: Path) -> str:
    try:
        return "\n".join((d / "init.log").read_text().splitlines()[-10:])
    except OSError:
        return "(no init.log)"


def running(node: NodeState) -> bool:
    """True if the node's init runs (and is really this node's: its pid was not reused)."""
    return netns.in_netns(node.init_pid, node.netns)


def sshd_pid(cluster: ClusterState, node: NodeState) -> int | None:
    """Host pid of the node's sshd listener, if it runs."""
    try:
        ns_pid = int((node_dir(cluster, node) / "sshd.pid").read_text())
    except (OSError, ValueError):
        return None
    pid = netns.ns_pid_to_host(node.init_pid, ns_pid) if running(node) else None
    return pid if pid and netns.comm(pid) == "sshd" else None


def listening(address: str, port: int = 22, timeout: float = 0.5) -> bool:
    try:
        socket.create_connection((address, port), timeout).close()
    except OSError:
        return False
    return True


def wait_sshd(cluster: ClusterState, node: NodeState, timeout: float = 15.0) -> None:
    """Wait until the node's sshd runs and accepts connections."""
    deadline = time.monotonic() + timeout
    while sshd_pid(cluster, node) is None or not listening(node.address):
        if not running(node) or time.monotonic() > deadline:
            raise SimError(f"sshd of {node.hostname} did not come up: {_log_tail(node_dir(cluster, node))}")
        time.sleep(0.01)


def exec_argv(node: NodeState, argv: Sequence[str], user: Optional[str] = None) -> list[str]:
    """The command line running ``argv`` inside the node: as root, or as ``user`` with a login-free
    environment (HOME, USER, LOGNAME, PATH and the user's groups, nothing else)."""
    if not running(node):
        raise SimError(f"node {node.hostname} is not running")
    if user:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--reset-env", *argv]
    return netns.nsenter_argv(node.init_pid, argv)


def run(node: NodeState, argv: Sequence[str], timeout: float = 60, user: Optional[str] = None,
        **kw) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run ``argv`` inside the node (without SSH; as root unless ``user``) and capture its output."""
    return subprocess.run(exec_argv(node, argv, user), capture_output=True, text=True, timeout=timeout, **kw)


def kill(node: NodeState) -> None:
    """Kill the node: SIGKILL its init, so the kernel kills every process of its PID namespace."""
    pids = netns.pidns_members(node.init_pid) if running(node) else []
    netns.signal_all(pids[:1], signal.SIGKILL)
    if left := netns.wait_gone(pids):
        raise SimError(f"processes {left} of {node.hostname} survive SIGKILL")
