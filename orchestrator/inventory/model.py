"""The typed inventory: what the controller knows about a cluster before it touches a node.

Everything here is frozen and built only by ``orchestrator.inventory.validate`` from a checked YAML
file, so a value of these types is always valid. The YAML keys are documented on each class (the
key is named in backquotes where it differs from the field); ``inventories/README.md`` has the
whole format with examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from orchestrator.inventory.profiles import HardwareProfile, get_profile
from orchestrator.slurm.settings import SlurmInventory, SlurmRoute

Pairs = tuple[tuple[str, str], ...]
DEFAULT_ASCEND_ROOT = "/usr/local/Ascend"  # CANN's install root for root; a non-root install: ~/Ascend
# CANN's environment scripts under an Ascend root: the toolkit's (required), nnal/atb's (if installed)
TOOLKIT_SET_ENV, ATB_SET_ENV = "ascend-toolkit/set_env.sh", "nnal/atb/set_env.sh"


def cann_scripts(ascend_root: str) -> tuple[str, str]:
    """(toolkit set_env.sh, nnal/atb set_env.sh) under ``ascend_root``."""
    root = ascend_root.rstrip("/")
    return f"{root}/{TOOLKIT_SET_ENV}", f"{root}/{ATB_SET_ENV}"


@dataclass(frozen=True)
class SshSettings:
    """How the controller reaches a node (``ssh:`` in ``cluster`` and per node; node keys win).

    ``key`` and ``known_hosts`` are controller paths: ``~`` is expanded and a relative path is taken
    relative to the inventory file's folder. ``key`` None means the SSH agent / default keys;
    ``known_hosts`` None means ``~/.ssh/known_hosts``. Host keys are always checked, at every hop.

    ``proxy_jump`` is the jump host chain to go through, first hop first, each ``[user@]host[:port]``
    (a hop without user/port uses ``user``/``port``; ``key`` and ``known_hosts`` apply to every hop).
    ``config`` is an OpenSSH client config file (controller path) whose Host entries are applied to
    the node and to each jump host: HostName, User, Port, IdentityFile and ProxyJump; keys written in
    the inventory (``written``: their names) win over the config's.
    """

    user: str = "root"
    port: int = 22
    key: Optional[str] = None
    known_hosts: Optional[str] = None
    connect_timeout: float = 10.0
    proxy_jump: tuple[str, ...] = ()
    config: Optional[str] = None
    written: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeSpec:
    """One node with its effective settings (cluster values merged with the node's overrides).

    ``host`` is the address the controller connects to and the rank table ``server_id``. ``name``
    is the hostname the node must report, if given. ``devices`` are the physical NPU ids used (on
    the ``cpu`` profile: rank slots), sorted; ``device_ips`` are aligned with them, or () when
    unknown (discovery fills them). ``workdir`` and ``python`` are node paths (absolute; ``~`` is
    expanded only on local nodes). ``env`` is the cluster env updated by the node env, sorted.
    ``local`` nodes are this machine, reached without SSH. ``super_pod_id`` is used only by rank
    table version 1.2. ``ascend_root`` is the node's Ascend install root (CANN's toolkit under
    ``<root>/ascend-toolkit``, the driver under ``<root>/driver``; ``/usr/local/Ascend`` by default on
    Ascend profiles), None on the ``cpu`` profile unless the inventory names one. ``slurm``: set on the
    nodes of a Slurm allocation (never written in an inventory): commands reach them as job steps.
    """

    host: str
    name: Optional[str]
    devices: tuple[int, ...]
    device_ips: tuple[str, ...]
    ssh: SshSettings
    workdir: str
    python: str
    env: Pairs
    local: bool = False
    super_pod_id: Optional[str] = None
    ascend_root: Optional[str] = None
    slurm: Optional[SlurmRoute] = None  # reached as Slurm job steps (scheduler: slurm), not over SSH

    @property
    def device_count(self) -> int:
        return len(self.devices)


@dataclass(frozen=True)
class JobDefaults:
    """The optional ``job:`` section: defaults for task options (command-line options win).

    ``model`` is a preset name (``13b``, ``tiny``) or a path to a model_config YAML. ``overrides``
    comes from ``job.set``, a list of ``key=value`` strings with the syntax of ``--set``, applied
    before the command line's.
    """

    model: str = "13b"
    tokenizer: Optional[str] = None
    train_dataset: Optional[str] = None
    eval_dataset: Optional[str] = None
    load_checkpoint: Optional[str] = None
    output_dir: str = "output"
    overrides: Pairs = ()


@dataclass(frozen=True)
class ClusterSettings:
    """The ``cluster:`` section as written (``{controller_python}`` resolved, ``~`` kept).

    Use the ``NodeSpec`` values for anything per node: they hold the merged, effective settings.
    ``launch_mode`` ``auto`` means rank_table on Ascend profiles and dynamic_cluster on ``cpu``
    (see ``effective_launch_mode``). ``shared_paths`` are node folders on shared storage.
    ``simulated_hardware`` is the data file of a simulated cluster (controller path).
    ``ascend_root`` is the Ascend install root as written (None: the profile's default, see NodeSpec).
    """

    name: str
    profile: str
    ssh: SshSettings
    workdir: str
    python: str
    env: Pairs
    shared_paths: tuple[str, ...] = ()
    rank_table_version: str = "1.0"
    launch_mode: str = "auto"
    simulated_hardware: Optional[str] = None
    ascend_root: Optional[str] = None
    scheduler: str = "ssh"  # ssh: the node list | slurm: Slurm gives the nodes (``slurm``)
    slurm: Optional[SlurmInventory] = None

    @property
    def hardware(self) -> HardwareProfile:
        return get_profile(self.profile)

    @property
    def effective_launch_mode(self) -> str:
        """``rank_table`` or ``dynamic_cluster``: ``auto`` resolved by the profile."""
        if self.launch_mode != "auto":
            return self.launch_mode
        return "rank_table" if self.hardware.accelerator else "dynamic_cluster"


@dataclass(frozen=True)
class Inventory:
    """A whole validated inventory; ``source`` is the file path or ``<embedded local default>``."""

    source: str
    cluster: ClusterSettings
    nodes: tuple[NodeSpec, ...]
    job: JobDefaults

    @property
    def profile(self) -> HardwareProfile:
        return self.cluster.hardware

    @property
    def world_size(self) -> int:
        return sum(n.device_count for n in self.nodes)

    def node(self, host: str) -> NodeSpec:
        """The node whose ``host`` is ``host``; KeyError lists the known hosts."""
        for n in self.nodes:
            if n.host == host:
                return n
        raise KeyError(f"no node {host!r} in {self.source}; hosts: {', '.join(n.host for n in self.nodes)}")
