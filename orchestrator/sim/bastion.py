"""A simulated cluster behind a bastion (``sim up --bastion``): a login node the controller reaches,
and compute nodes reachable only through it.

The compute nodes sit on the cluster bridge as usual, but the bridge has no host address, so the
controller has no route to their network (a direct connection fails). The bastion is a node like the
others (own namespaces, sshd, the job user and key) with two links: ``eth0``, a point-to-point veth to
the host (host ``.1``, bastion ``.254`` of the cluster's /24, both /32 routes), and ``eth1`` on the
cluster bridge at ``.10``. Node-to-node traffic (push relay, dynamic cluster scheduler) stays on the
bridge. The host's way toward the nodes' /24 ends on the bastion's link (see ``dead_end``). Kernel names follow the cluster's: netns ``osim-NAME.n0``, host veths ``osv<h>n0`` (to eth0)
and ``osv<h>n00`` (to eth1, on the bridge), so ``sim down`` finds them like any node's.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from orchestrator.errors import SimError
from orchestrator.sim import netns, node, node_files, sshd, subnet
from orchestrator.sim.hardware import Hardware
from orchestrator.sim.state import ClusterState, NodeState, netns_name, veth_name

PUBLIC_INDEX = 254  # the bastion's controller-side address in the cluster's /24


def node_state(st: ClusterState) -> NodeState:
    """The bastion as recorded (index 0; its address is the one the controller connects to)."""
    return NodeState(
        0, f"{st.name}-bastion", netns_name(st.name, 0), veth_name(st.name, 0), public_address(st)
    )


def public_address(st: ClusterState) -> str:
    return subnet.host_address(st.subnet, PUBLIC_INDEX)


def private_address(st: ClusterState) -> str:
    return subnet.node_address(st.subnet, 0)


def prepare(st: ClusterState, hw: Hardware, hosts: str, setup: node_files.ClusterSetup) -> str:
    """Write the bastion's files (a node's, with the same users and key); return its known_hosts line."""
    assert st.bastion is not None
    return sshd.host_key_line(
        node_files.prepare(st, st.bastion, hw, hosts, setup), st.bastion.address, st.bastion.hostname
    )


def plumb(st: ClusterState) -> None:
    """The bastion's namespace, its point-to-point link to the host and its leg on the cluster bridge."""
    b = st.bastion
    assert b is not None
    host, public, prefix = subnet.host_address(st.subnet, 1), public_address(st), st.subnet.split("/")[1]
    netns.ip("netns", "add", b.netns)
    netns.ip("link", "add", b.veth, "type", "veth", "peer", "name", "eth0", "netns", b.netns)
    netns.ip("addr", "add", host, "peer", f"{public}/32", "dev", b.veth)
    netns.ip("link", "set", b.veth, "up")
    netns.ip("link", "add", b.veth + "0", "type", "veth", "peer", "name", "eth1", "netns", b.netns)
    netns.ip("link", "set", b.veth + "0", "master", st.bridge, "up")
    netns.ip("-n", b.netns, "addr", "add", public, "peer", f"{host}/32", "dev", "eth0")
    netns.ip("-n", b.netns, "addr", "add", f"{private_address(st)}/{prefix}", "dev", "eth1")
    for dev in ("lo", "eth0", "eth1"):
        netns.ip("-n", b.netns, "link", "set", dev, "up")
    dead_end(st)


def dead_end(st: ClusterState) -> None:
    """Make a direct connection from the host to a node fail at once with "No route to host".

    Without this, the host's default route would carry it to whatever lies beyond (a proxy may even
    accept it). The nodes' /24 is sent onto the bastion's link, where nothing answers for them (the
    bastion neither forwards nor proxies ARP), and one quick ARP try there fails. The route and the
    ARP settings belong to the host veth, so they go with it.
    """
    veth = st.bastion.veth
    netns.ip("route", "add", st.subnet, "dev", veth, "metric", "4242")
    for knob, value in (("mcast_solicit", "1"), ("ucast_solicit", "1"), ("retrans_time_ms", "200")):
        Path(f"/proc/sys/net/ipv4/neigh/{veth}/{knob}").write_text(value)


def start(st: ClusterState) -> None:
    """Start the bastion's init and wait for its sshd."""
    assert st.bastion is not None
    node.start(st, st.bastion)
    node.wait_sshd(st, st.bastion)


def wait_node_sshd(st: ClusterState, n: NodeState, timeout: float = 15.0) -> None:
    """Wait until a compute node's sshd accepts connections, tested from the bastion (the host has no
    route to the node)."""
    assert st.bastion is not None
    probe = ["ip", "netns", "exec", st.bastion.netns, "bash", "-c", f"exec 3<>/dev/tcp/{n.address}/22"]
    deadline = time.monotonic() + timeout
    while True:
        if node.sshd_pid(st, n) is not None and subprocess.run(probe, capture_output=True).returncode == 0:
            return
        if not node.running(n) or time.monotonic() > deadline:
            raise SimError(
                f"sshd of {n.hostname} did not come up (probed from the bastion): see {node_files.node_dir(st, n) / 'init.log'}"
            )
        time.sleep(0.02)
