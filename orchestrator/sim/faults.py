"""Faults on demand for a simulated node: cut its link, stop its sshd, freeze it, kill it, boot it again.

Each function takes the cluster name and a node reference (hostname, address, ``nodeN`` or ``N``).
"""

from __future__ import annotations

import signal
import time

from orchestrator.errors import SimError
from orchestrator.sim import netns, node
from orchestrator.sim.state import ClusterState, NodeState

FAULTS = ("link-down", "link-up", "sshd-stop", "sshd-start", "freeze", "thaw", "kill", "boot")


def _target(cluster: str, ref: str) -> tuple[ClusterState, NodeState]:
    netns.require_root()
    st = ClusterState.load(cluster)
    if st is None:
        raise SimError(f"no simulated cluster named {cluster!r}")
    return st, st.node(str(ref))


def link_down(cluster: str, ref: str) -> None:
    """Unplug the node: its veth leaves the bridge's service (host side down)."""
    _, n = _target(cluster, ref)
    netns.ip("link", "set", n.veth, "down")


def link_up(cluster: str, ref: str) -> None:
    _, n = _target(cluster, ref)
    netns.ip("link", "set", n.veth, "up")


def sshd_stop(cluster: str, ref: str) -> None:
    """Stop the node's sshd listener (sessions already open keep running, as with systemctl stop)."""
    st, n = _target(cluster, ref)
    pid = node.sshd_pid(st, n)
    if pid is None:
        return
    netns.signal_all([pid], signal.SIGTERM)
    if netns.wait_gone([pid], 5.0):
        netns.signal_all([pid], signal.SIGKILL)
        netns.wait_gone([pid], 5.0)


def sshd_start(cluster: str, ref: str) -> None:
    st, n = _target(cluster, ref)
    if node.sshd_pid(st, n) is not None:
        return
    d = node.node_dir(st, n)
    (d / "sshd.pid").unlink(missing_ok=True)
    proc = node.run(
        n, ["/usr/sbin/sshd", "-f", str(d / "sshd_config"), "-E", str(d / "sshd.log")], timeout=15
    )
    if proc.returncode != 0:
        raise SimError(f"sshd of {n.hostname} did not start: {proc.stderr.strip()}")
    node.wait_sshd(st, n)


def _signal_node(n: NodeState, sig: int) -> None:
    """Signal every process of the node until no new process shows up (a fork may race the sweep)."""
    done: set[int] = set()
    for _ in range(50):
        pids = [p for p in netns.pidns_members(n.init_pid) if p not in done]
        if not pids:
            return
        netns.signal_all(pids, sig)
        done.update(pids)
        time.sleep(0.01)
    raise SimError(f"processes of {n.hostname} keep appearing while signalling them")


def freeze(cluster: str, ref: str) -> None:
    """SIGSTOP every process of the node (it stops answering, its sockets stay open)."""
    _, n = _target(cluster, ref)
    if not node.running(n):
        raise SimError(f"node {n.hostname} is not running")
    _signal_node(n, signal.SIGSTOP)


def thaw(cluster: str, ref: str) -> None:
    _, n = _target(cluster, ref)
    if node.running(n):
        _signal_node(n, signal.SIGCONT)


def kill(cluster: str, ref: str) -> None:
    """Kill every process of the node (its network stays; `boot` starts it again)."""
    _, n = _target(cluster, ref)
    node.kill(n)


def boot(cluster: str, ref: str) -> None:
    """Start a killed node again: fresh init and sshd, same address, host key and files."""
    st, n = _target(cluster, ref)
    if node.running(n):
        raise SimError(f"node {n.hostname} is running; kill it first")
    node.start(st, n)
    node.wait_sshd(st, n)


def inject(cluster: str, fault: str, ref: str) -> None:
    """Apply a fault by its CLI name (one of FAULTS)."""
    if fault not in FAULTS:
        raise SimError(f"unknown fault {fault!r}: use one of {', '.join(FAULTS)}")
    globals()[fault.replace("-", "_")](cluster, ref)
