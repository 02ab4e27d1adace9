"""One simulated node: its private layers on disk, its network plumbing, and its init process.

A node's files live in ``<cluster dir>/nodes/<hostname>/``; ``layer/etc``, ``layer/usr_local`` and
``layer/opt`` are overlaid (inside the node only) onto /etc, /usr/local and /opt, so /etc/hccn.conf,
the fake tools on /usr/local/bin and the work folder /opt/orchestrate-node exist on that node alone,
while the rest of the host's filesystem (e.g. the controller's venv) stays visible.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from orchestrator.errors import SimError
from orchestrator.sim import netns, sshd
from orchestrator.sim.fake_tools import printers
from orchestrator.sim.hardware import Hardware
from orchestrator.sim.state import WORKDIR, ClusterState, NodeState

LAYERS = {"/etc": "etc", "/usr/local": "usr_local", "/opt": "opt"}
INIT = Path(__file__).with_name("node_init.py")


def node_dir(cluster: ClusterState, node: NodeState) -> Path:
    return cluster.dir / "nodes" / node.hostname


def workdir_on_host(cluster: ClusterState, node: NodeState) -> Path:
    """Where the node's private work folder (WORKDIR inside the node) is seen from the host."""
    return node_dir(cluster, node) / "layer" / LAYERS["/opt"] / WORKDIR.removeprefix("/opt/")


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.symlink_to(target)


def _write_etc(etc: Path, cluster: ClusterState, node: NodeState, hw: Hardware, hosts: str) -> None:
    """The node's /etc additions: identity, name resolution, hccn.conf, the fake tools' config."""
    _write(etc / "hostname", node.hostname + "\n")
    _write(etc / "hosts", hosts)
    _write(
        etc / "resolv.conf",
        "# simulated node: no DNS server; names come from /etc/hosts\nnameserver 127.0.0.1\n",
    )
    _write(etc / "hccn.conf", printers.hccn_conf(hw.to_dict()["nodes"][node.index - 1]))
    conf = {"hardware": str(cluster.dir / "hardware.json"), "node": node.hostname}
    _write(etc / "orchestrate-sim" / "node.json", json.dumps(conf) + "\n")
    (etc / "orchestrate-sim" / "npu-procs").mkdir(exist_ok=True)
    (etc / "orchestrate-sim" / "npu-procs").chmod(0o1777)


def _write_usr_local(usr: Path, hw: Hardware, tools: dict[str, Path]) -> None:
    """The node's /usr/local additions: npu-smi and hccn_tool on PATH, the driver's tools and version."""
    for name, exe in tools.items():
        _link(usr / "bin" / name, exe)
    _link(usr / "Ascend" / "driver" / "tools" / "hccn_tool", tools["hccn_tool"])
    version = f"Version={hw.driver_version}\npackage_version={hw.driver_version}\n"
    _write(usr / "Ascend" / "driver" / "version.info", version)


def prepare(cluster: ClusterState, node: NodeState, hw: Hardware, hosts: str, tools: dict[str, Path]) -> Path:
    """Write the node's layers, host key and sshd/init configs; return its public host key file."""
    d = node_dir(cluster, node)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_etc(d / "layer" / "etc", cluster, node, hw, hosts)
    _write_usr_local(d / "layer" / "usr_local", hw, tools)
    workdir_on_host(cluster, node).mkdir(parents=True, exist_ok=True)
    host_key = d / "ssh_host_ed25519_key"
    pub = sshd.keygen(host_key, f"root@{node.hostname}")
    config = sshd.sshd_config(node.address, host_key, cluster.dir / "authorized_keys", d / "sshd.pid")
    _write(d / "sshd_config", config, 0o600)
    overlays = []
    for target, layer in LAYERS.items():
        (d / "ovl" / layer).mkdir(parents=True, exist_ok=True)
        (d / "layer" / layer).mkdir(parents=True, exist_ok=True)
        overlays.append({"target": target, "upper": str(d / "layer" / layer), "work": str(d / "ovl" / layer)})
    # A node is a fresh machine: root's shell start-up files of the host (pyenv init and the like,
    # run by bash for every SSH command) are hidden behind the node's own, empty ones.
    rc = d / "root_bashrc"
    _write(rc, "# root's ~/.bashrc on simulated node " + node.hostname + "\n")
    binds = [{"source": str(rc), "target": str(Path.home() / name)} for name in (".bashrc", ".profile")]
    init = {"hostname": node.hostname, "overlays": overlays, "binds": binds, "mkdirs": ["/run/sshd"]}
    init["sshd"] = [sshd.SSHD, "-f", str(d / "sshd_config"), "-E", str(d / "sshd.log")]
    _write(d / "init.json", json.dumps(init, indent=1) + "\n", 0o600)
    return pub


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
        sys.executable,
        "-I",
        str(INIT),
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


def exec_argv(node: NodeState, argv: Sequence[str]) -> list[str]:
    if not running(node):
        raise SimError(f"node {node.hostname} is not running")
    return netns.nsenter_argv(node.init_pid, argv)


def run(node: NodeState, argv: Sequence[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside the node (without SSH) and capture its output."""
    return subprocess.run(exec_argv(node, argv), capture_output=True, text=True, timeout=timeout, **kw)


def kill(node: NodeState) -> None:
    """Kill the node: SIGKILL its init, so the kernel kills every process of its PID namespace."""
    pids = netns.pidns_members(node.init_pid) if running(node) else []
    netns.signal_all(pids[:1], signal.SIGKILL)
    if left := netns.wait_gone(pids):
        raise SimError(f"processes {left} of {node.hostname} survive SIGKILL")
