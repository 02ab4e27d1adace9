"""What a simulated node is made of on disk, and what its init mounts (``init.json``).

A node's files live in ``<cluster dir>/nodes/<hostname>/``:

- ``layer/etc``, ``layer/usr_local``, ``layer/opt``: overlaid (inside the node only) onto /etc,
  /usr/local and /opt: the node's accounts, hosts, hccn.conf and fake-tool config; its fake CANN and
  driver install, npu-smi and the simulation's node-side modules; its work folder
  /opt/orchestrate-node (owned by the job user);
- ``home``: the node's whole /home (the job user's home only); ``root_home``: its /root;
- ``empty``: bound read-only over every path of the controller a node must not see: the checkout
  running the simulation, its venv, the invoking user's home (see :func:`hidden_paths`).

The cluster's ``shared/`` folder (the hardware file and its JSON twin) is bound read-only at
/etc/orchestrate-sim/cluster, and the cached node Python at ``/usr/local/python3.X`` (read-only).
Only /tmp, /usr and the rest of the system stay shared with the host, as on a fresh machine.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from orchestrator.errors import InputError
from orchestrator.sim import cann, node_user, sshd, tools
from orchestrator.sim.fake_tools import printers
from orchestrator.sim.hardware import Hardware, node_dict
from orchestrator.sim.node_python import NODE_HOOKS, NodePython
from orchestrator.sim.state import ROOT, WORKDIR, ClusterState, NodeState

LAYERS = {"/etc": "etc", "/usr/local": "usr_local", "/opt": "opt"}
NODE_CONF_DIR = "/etc/orchestrate-sim"
CLUSTER_MOUNT = f"{NODE_CONF_DIR}/cluster"  # the cluster's shared/ folder, read-only
STANDIN = Path(__file__).with_name("standin")
PROTECTED = ("/", "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/var", "/var/lib", "/tmp", "/opt",
             "/home", "/proc", "/dev", "/sys", "/run", "/usr/local", str(ROOT))  # fmt: skip


@dataclass(frozen=True)
class ClusterSetup:
    """What every node of a cluster shares: the job user, the node Python, the client key."""

    uid: int
    gid: int
    public_key: str
    python: Optional[NodePython]
    hidden: tuple[str, ...]
    system_python: str


def node_dir(cluster: ClusterState, node: NodeState) -> Path:
    return cluster.dir / "nodes" / node.hostname


def workdir_on_host(cluster: ClusterState, node: NodeState) -> Path:
    """Where the node's private work folder (WORKDIR inside the node) is seen from the host."""
    return node_dir(cluster, node) / "layer" / LAYERS["/opt"] / WORKDIR.removeprefix("/opt/")


def host_path(cluster: ClusterState, node: NodeState, path: str) -> Path:
    """The host folder holding node path ``path`` (under /etc, /usr/local, /opt or /home)."""
    d = node_dir(cluster, node)
    for target, layer in [*LAYERS.items(), ("/home", "../home")]:
        if path == target or path.startswith(target + "/"):
            return (d / "layer" / layer / path[len(target) :].lstrip("/")).resolve()
    raise InputError(
        f"node path {path!r}: a simulated node's own files lie under {', '.join(LAYERS)} or /home"
    )


def hidden_paths() -> tuple[str, ...]:
    """The controller's paths a node must not see: this checkout and the running venv (its /root and
    /home are the node's own folders anyway, which also hides the invoking user's home)."""
    found = set()
    package = Path(__file__).resolve().parents[1]
    if (package.parent / "pyproject.toml").exists():
        found.add(str(package.parent))
    if sys.prefix != sys.base_prefix:
        found.update((str(Path(sys.prefix).resolve()), sys.prefix))
    ok = []
    for p in sorted(found):
        replaced = any(p == r or p.startswith(r + "/") for r in ("/root", "/home"))
        inside = [q for q in PROTECTED if q == p or q.startswith(p.rstrip("/") + "/")]
        if p.startswith("/") and not inside and not replaced:
            ok.append(p)
    return tuple(ok)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _write_etc(etc: Path, cluster: ClusterState, node: NodeState, hw: Hardware, hosts: str) -> None:
    """The node's /etc additions: identity, name resolution, hccn.conf, the fake tools' config."""
    _write(etc / "hostname", node.hostname + "\n")
    _write(etc / "hosts", hosts)
    _write(
        etc / "resolv.conf",
        "# simulated node: no DNS server; names come from /etc/hosts\nnameserver 127.0.0.1\n",
    )
    _write(etc / "hccn.conf", printers.hccn_conf(node_dict(hw, node.index - 1)))
    conf = {
        "hardware": f"{CLUSTER_MOUNT}/hardware.json",
        "node": node.hostname,
        "address": node.address,
        "ascend_root": hw.ascend_root,
        "tools": tools.NODE_TOOLS,
    }
    _write(etc / "orchestrate-sim" / "node.json", json.dumps(conf) + "\n")
    (etc / "orchestrate-sim" / "cluster").mkdir(exist_ok=True)
    (etc / "orchestrate-sim" / "npu-procs").mkdir(exist_ok=True)
    (etc / "orchestrate-sim" / "npu-procs").chmod(0o1777)


def _install_software(cluster: ClusterState, node: NodeState, hw: Hardware, setup: ClusterSetup) -> None:
    """The fake tools, the stand-in's modules and the fake CANN/driver install."""
    usr = node_dir(cluster, node) / "layer" / "usr_local"
    exes = tools.install(usr / tools.NODE_TOOLS.removeprefix("/usr/local/"), setup.system_python,
                         tools.NODE_TOOLS)  # fmt: skip
    (usr / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(exes["npu-smi"], usr / "bin" / "npu-smi")
    (usr / "bin" / "npu-smi").chmod(0o755)
    hooks = usr / NODE_HOOKS.removeprefix("/usr/local/")
    hooks.mkdir(parents=True, exist_ok=True)
    for src in sorted(STANDIN.glob("osim_*.py")):
        shutil.copyfile(src, hooks / src.name)
        (hooks / src.name).chmod(0o644)
    if setup.python is not None:
        (usr / setup.python.node_dir.removeprefix("/usr/local/")).mkdir(parents=True, exist_ok=True)
    if hw.ascend_root:
        top = host_path(cluster, node, hw.ascend_root)
        cann.install(top, hw.ascend_root, hw.cann_version, hw.driver_version, exes["hccn_tool"])
        if hw.ascend_root.startswith("/home/"):
            node_user.chown(top, setup.uid, setup.gid)


def prepare(cluster: ClusterState, node: NodeState, hw: Hardware, hosts: str, setup: ClusterSetup) -> Path:
    """Write the node's layers, host key and sshd/init configs; return its public host key file."""
    d = node_dir(cluster, node)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    etc = d / "layer" / "etc"
    _write_etc(etc, cluster, node, hw, hosts)
    node_user.write_accounts(etc, setup.uid, setup.gid, cluster.user)
    node_user.root_keys(etc, setup.public_key)
    node_user.make_home(d / "home", setup.public_key, setup.uid, setup.gid, cluster.user)
    node_user.make_root_home(d / "root_home", node.hostname)
    (d / "empty").mkdir(exist_ok=True)
    (d / "empty").chmod(0o755)
    _install_software(cluster, node, hw, setup)
    work = workdir_on_host(cluster, node)
    work.mkdir(parents=True, exist_ok=True)
    node_user.chown(work, setup.uid, setup.gid)
    host_key = d / "ssh_host_ed25519_key"
    pub = sshd.keygen(host_key, f"root@{node.hostname}")
    config = sshd.sshd_config(node.address, host_key, node_user.ROOT_KEYS, d / "sshd.pid")
    _write(d / "sshd_config", config, 0o600)
    overlays = []
    for target, layer in LAYERS.items():
        (d / "ovl" / layer).mkdir(parents=True, exist_ok=True)
        (d / "layer" / layer).mkdir(parents=True, exist_ok=True)
        overlays.append({"target": target, "upper": str(d / "layer" / layer), "work": str(d / "ovl" / layer)})
    binds = [
        {"source": str(d / "home"), "target": "/home"},
        {"source": str(d / "root_home"), "target": "/root"},
        {"source": str(cluster.dir / "shared"), "target": CLUSTER_MOUNT, "ro": True},
    ]
    if setup.python is not None:
        binds.append({"source": str(setup.python.host_dir), "target": setup.python.node_dir, "ro": True})
    binds += [{"source": str(d / "empty"), "target": p, "ro": True} for p in setup.hidden]
    init = {"hostname": node.hostname, "overlays": overlays, "binds": binds, "mkdirs": ["/run/sshd"]}
    init["sshd"] = [sshd.SSHD, "-f", str(d / "sshd_config"), "-E", str(d / "sshd.log")]
    init["npu_claims"] = {"tools": tools.NODE_TOOLS, "release_s": hw.npu_release_s}
    _write(d / "init.json", json.dumps(init, indent=1) + "\n", 0o600)
    return pub
