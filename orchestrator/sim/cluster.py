"""Bring a simulated cluster up, tear it down (even after a crash), and report its status."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from orchestrator.errors import SimError
from orchestrator.sim import bastion as bastion_node
from orchestrator.sim import hardware as hwmod
from orchestrator.sim import (
    inventory_file,
    links,
    netns,
    node,
    node_files,
    node_python,
    node_user,
    slurm,
    sshd,
    state,
    subnet,
    teardown,
    tools,
)
from orchestrator.sim.fake_tools import printers
from orchestrator.sim.state import ClusterState, NodeState

Report = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class SimNode:
    """A node as the controller sees it; ``workdir`` is the node's work folder seen from the host."""

    index: int
    hostname: str
    address: str
    netns: str
    workdir: Path

    @property
    def host(self) -> str:
        """The address the controller connects to (the inventory's ``host``)."""
        return self.address


@dataclass(frozen=True)
class Cluster:
    """Handle on a running cluster: the files a client needs and a way into each node."""

    name: str
    dir: Path
    subnet: str
    nodes: tuple[SimNode, ...]

    key = property(lambda self: self.dir / "id_ed25519")
    known_hosts = property(lambda self: self.dir / "known_hosts")
    inventory = property(lambda self: self.dir / "inventory.yaml")
    hardware = property(lambda self: self.dir / "shared" / "hardware.yaml")  # nodes read its JSON twin

    @property
    def user(self) -> str:
        """The non-root user jobs run as on every node (the inventory's ssh user)."""
        return self.state().user or state.JOB_USER

    def state(self) -> ClusterState:
        st = ClusterState.load(self.name)
        if st is None:
            raise SimError(f"cluster {self.name!r} has no state (was it brought down?)")
        return st

    def node(self, ref: Union[str, int]) -> SimNode:
        """A node by hostname, address, ``nodeN`` or index N (1-based)."""
        n = self.state().node(str(ref))
        return next(x for x in self.nodes if x.index == n.index)

    def read_hardware(self) -> hwmod.Hardware:
        return hwmod.load(self.hardware)

    def set_hardware(self, hw: hwmod.Hardware) -> None:
        """Change the simulated hardware of a running cluster (same node names): the fake tools answer
        from it at once, and each node's /etc/hccn.conf is rewritten."""
        if [n.name for n in hw.nodes] != [n.hostname for n in self.nodes]:
            raise SimError(f"hardware nodes must be {[n.hostname for n in self.nodes]}")
        hwmod.save(hw, self.hardware)
        for i, n in enumerate(self.nodes):
            text = printers.hccn_conf(hwmod.node_dict(hw, i))
            proc = self.exec(n.hostname, ["sh", "-c", 'printf %s "$1" > /etc/hccn.conf', "sh", text])
            if proc.returncode != 0:
                raise SimError(f"{n.hostname}: could not write /etc/hccn.conf: {proc.stderr.strip()}")

    def exec(
        self,
        ref: Union[str, int],
        cmd: Union[str, Sequence[str]],
        timeout: float = 60,
        user: Optional[str] = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside a node without SSH (a string runs under ``sh -c``), as root (the
        simulation's own management) or as ``user`` (e.g. ``cluster.user``, with a fresh login-less
        environment: no CANN variables, as over SSH)."""
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        return node.run(self.state().node(str(ref)), argv, timeout=timeout, user=user)


def _handle(st: ClusterState) -> Cluster:
    nodes = tuple(
        SimNode(n.index, n.hostname, n.address, n.netns, node.workdir_on_host(st, n)) for n in st.nodes
    )
    return Cluster(st.name, st.dir, st.subnet, nodes)


def open_cluster(name: str) -> Cluster:
    st = ClusterState.load(state.check_name(name))
    if st is None:
        raise SimError(f"no simulated cluster named {name!r} (see `orchestrate sim status`)")
    return _handle(st)


def _taken_subnets(name: str) -> list[str]:
    others = [ClusterState.load(n) for n in state.known_clusters() if n != name]
    return netns.host_networks() + [o.subnet for o in others if o]


def _check_hash_collision(name: str) -> None:
    for other in state.known_clusters():
        if other != name and state.name_hash(other) == state.name_hash(name):
            raise SimError(
                f"cluster names {name!r} and {other!r} map to the same interface names: pick another name"
            )


def up(name: str = "sim", nodes: int = 2, hardware_file: Optional[Path] = None, devices: int = 0,
       kind: str = "cpu", report: Report = _stderr, limits: Optional[links.LinkLimits] = None,
       with_slurm: bool = False, bastion: bool = False) -> Cluster:  # fmt: skip
    """Build cluster ``name`` with ``nodes`` nodes (removing leftovers of the same name first).

    Without ``hardware_file``, every node has ``devices`` idle NPUs of ``kind`` (default: the kind's
    count). The node Python is built first if this machine has none for the current pins (``report``
    gets a progress line). ``limits``: the bandwidth (and latency) of every link (``links``).
    ``with_slurm``: slurmctld on this host and slurmd in every node (``slurm``).
    ``bastion``: the nodes are reachable only through a login node (``bastion``).
    """
    netns.require_root()
    state.check_name(name)
    if not 1 <= nodes <= 150:
        raise SimError("a simulated cluster has 1..150 nodes")
    if bastion and with_slurm:
        raise SimError(
            "--bastion and --slurm do not go together: slurmd on the nodes could not reach this host"
        )
    hostnames = [f"{name}-node{i}" for i in range(1, nodes + 1)]
    hw_in = hwmod.load(hardware_file) if hardware_file else hwmod.default_hardware(hostnames, devices, kind)
    hw = hwmod.with_names(hw_in, hostnames)
    python = node_python.ensure(report)
    with state.lock():
        teardown.remove(name)
        _check_hash_collision(name)
        st = ClusterState(name, subnet.choose(name, _taken_subnets(name)), state.bridge_name(name))
        st.user, (st.uid, st.gid), st.node_python = state.JOB_USER, node_user.choose_ids(), python.key
        st.nodes = [
            NodeState(
                i, h, state.netns_name(name, i), state.veth_name(name, i), subnet.node_address(st.subnet, i)
            )
            for i, h in enumerate(hostnames, 1)
        ]
        st.bastion = bastion_node.node_state(st) if bastion else None
        state.make_private_dir(st.dir)
        st.save()  # recorded before any kernel object exists; `down` also finds them by name
        try:
            netns.ip("link", "add", st.bridge, "type", "bridge")
            if not bastion:  # behind a bastion the host has no address, so no route, on the nodes' network
                netns.ip("addr", "add", f"{subnet.host_address(st.subnet, 1)}/24", "dev", st.bridge)
            netns.ip("link", "set", st.bridge, "up")
        except BaseException:
            teardown.remove(name)
            raise
    try:
        built = _build(st, hw, python)
        if limits is not None:
            links.apply(st, limits)
            st.links = limits.to_dict()
            st.save()
        if with_slurm:
            st.slurm = True
            st.save()  # recorded first: `down` then stops slurmctld even if the start fails half-way
            slurm.start(st)
            text = inventory_file.render_slurm(st, hw, built.key, built.known_hosts, python.python)
            sshd.write_private(slurm.inventory_path(name), text)
        return built
    except BaseException:
        teardown.down(name)
        raise


def _build(st: ClusterState, hw: hwmod.Hardware, python: node_python.NodePython) -> Cluster:
    (st.dir / "shared").mkdir(mode=0o755)
    hwmod.save(hw, st.dir / "shared" / "hardware.yaml")
    client_pub = sshd.keygen(st.dir / "id_ed25519", f"orchestrate-sim-{st.name}")
    setup = node_files.ClusterSetup(st.uid, st.gid, client_pub.read_text(), python, node_files.hidden_paths(),
                                    tools.system_python())  # fmt: skip
    hosts = Path("/etc/hosts").read_text() + "".join(f"{n.address}\t{n.hostname}\n" for n in st.nodes)
    known = "".join(
        sshd.host_key_line(node_files.prepare(st, n, hw, hosts, setup), n.address, n.hostname)
        for n in st.nodes
    )
    known += bastion_node.prepare(st, hw, hosts, setup) if st.bastion else ""
    sshd.write_private(st.dir / "known_hosts", known)
    for n in st.nodes:
        node.plumb(st, n)
        node.start(st, n)
    if st.bastion:
        bastion_node.plumb(st)
        bastion_node.start(st)
    for n in st.nodes:
        (bastion_node.wait_node_sshd if st.bastion else node.wait_sshd)(st, n)
    cluster = _handle(st)
    inv = inventory_file.render(st, hw, cluster.key, cluster.known_hosts, cluster.hardware, python.python)
    sshd.write_private(cluster.inventory, inv)
    st.status = "up"
    st.save()
    return cluster


def status(name: Optional[str] = None) -> list[dict]:
    """One record per cluster: its subnet, state and nodes (address, hostname, running, sshd, link)."""
    out = []
    for cname in [name] if name else teardown.all_names():
        st = ClusterState.load(cname)
        if st is None and name and not teardown.leftovers(name):
            raise SimError(f"no simulated cluster named {name!r}")
        if st is None:
            out.append(
                {"name": cname, "status": "leftover (no state; run `orchestrate sim down`)", "nodes": []}
            )
            continue
        rows = [
            {
                "node": n.hostname,
                "address": n.address,
                "running": node.running(n),
                "sshd": node.sshd_pid(st, n) is not None,
                "link": "UP" if netns.link_is_up(n.veth) else "DOWN",
                "frozen": node.running(n) and netns.stopped(n.init_pid),
            }
            for n in st.nodes
        ]
        out.append(
            {
                "name": st.name,
                "subnet": st.subnet,
                "status": st.status,
                "dir": str(st.dir),
                "nodes": rows,
                "links": st.links or None,
            }  # fmt: skip
        )
    return out
