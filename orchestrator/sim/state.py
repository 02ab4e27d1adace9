"""Where a simulated cluster lives on disk, how its resources are named, and its recorded state.

Everything of cluster ``NAME`` sits under ``/var/lib/orchestrate-sim/NAME/`` (0700). Kernel objects
carry names derived from the cluster name, so ``down`` finds them even without the state file:
network namespaces ``osim-NAME.nN``, bridge ``osb<h>``, host-side veths ``osv<h>nN`` (``<h>``: six
hex digits of the name's SHA-1; interface names are limited to 15 characters).
The state file is rewritten as soon as each resource exists.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from orchestrator.errors import InputError

ROOT = Path(os.environ.get("ORCHESTRATE_SIM_ROOT", "/var/lib/orchestrate-sim"))
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,23}$")
NETNS_PREFIX = "osim-"
WORKDIR = "/opt/orchestrate-node"  # the node work folder: same path, private content on every node
JOB_USER = "spark"  # the non-root user jobs run as on every node (the generated inventory's ssh user)


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InputError(f"cluster name {name!r}: use 1-24 of a-z, 0-9, '-', starting with a letter")
    return name


def name_hash(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:6]


def bridge_name(name: str) -> str:
    return f"osb{name_hash(name)}"


def veth_name(name: str, index: int) -> str:
    return f"osv{name_hash(name)}n{index}"


def netns_name(name: str, index: int) -> str:
    return f"{NETNS_PREFIX}{name}.n{index}"


def netns_re(name: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(NETNS_PREFIX + name)}\.n\d+$")


def cluster_dir(name: str) -> Path:
    return ROOT / name


@dataclass
class NodeState:
    """One node as recorded: kernel names, address, and the host pids of its launcher and init."""

    index: int
    hostname: str
    netns: str
    veth: str
    address: str
    launcher_pid: Optional[int] = None  # the `unshare` process (host PID namespace)
    init_pid: Optional[int] = None  # the node's PID 1, seen from the host

    @property
    def dir(self) -> str:
        return f"nodes/{self.hostname}"


@dataclass
class ClusterState:
    """A cluster as recorded in ``state.json``."""

    name: str
    subnet: str
    bridge: str
    status: str = "creating"  # creating, up
    nodes: list[NodeState] = field(default_factory=list)
    user: str = ""  # the job user of every node, with the same uid/gid everywhere
    uid: int = 0
    gid: int = 0
    node_python: str = ""  # key of the cached node Python env the nodes mount
    links: dict = field(default_factory=dict)  # link limits (links.LinkLimits) when `sim up --link-rate`
    slurm: bool = False  # slurmctld on the host and slurmd in every node (`sim up --slurm`)
    bastion: Optional[NodeState] = None  # the login node in front of the nodes (`sim up --bastion`)

    @property
    def dir(self) -> Path:
        return cluster_dir(self.name)

    def node(self, ref: str) -> NodeState:
        """A node by hostname, address, ``nodeN`` or ``N``."""
        for n in self.nodes:
            if ref in (n.hostname, n.address, f"node{n.index}", str(n.index)):
                return n
        raise InputError(
            f"cluster {self.name!r} has no node {ref!r} (nodes: {', '.join(n.hostname for n in self.nodes)})"
        )

    def save(self) -> None:
        path = self.dir / "state.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(dataclasses.asdict(self), f, indent=1, sort_keys=True)
        os.replace(tmp, path)

    @classmethod
    def load(cls, name: str) -> Optional[ClusterState]:
        path = cluster_dir(name) / "state.json"
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        nodes = [NodeState(**n) for n in raw.pop("nodes", [])]
        bastion = raw.pop("bastion", None)
        return cls(nodes=nodes, bastion=NodeState(**bastion) if bastion else None, **raw)


def known_clusters() -> list[str]:
    """Names of the clusters with a state folder."""
    if not ROOT.is_dir():
        return []
    return sorted(p.name for p in ROOT.iterdir() if p.is_dir() and NAME_RE.match(p.name))


def make_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


@contextmanager
def lock() -> Iterator[None]:
    """Serialise up/down on this machine (subnet and name allocation)."""
    make_private_dir(ROOT)
    with open(ROOT / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield
