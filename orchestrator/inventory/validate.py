"""Build a typed :class:`Inventory` from located YAML data, or raise one InputError with every problem.

The format (every key; ``inventories/README.md`` has examples)::

    cluster:                      # required
      name: demo                  # required
      profile: cpu                # required: atlas-800t-a2-64g | atlas-800-32g | cpu
      ssh: {user: root, port: 22, key: ~/.ssh/id_ed25519, known_hosts: ~/.ssh/known_hosts,
            connect_timeout: 10,  # all optional; key/known_hosts/config are controller paths
            proxy_jump: "admin@login.example.com:2222,10.0.0.254",  # jump hosts (or a list; none)
            config: ~/.ssh/config}  # apply this OpenSSH config (Host aliases, ProxyJump, ...)
      workdir: /data/orchestrate  # required: node work folder (absolute)
      python: /usr/bin/python3    # required: node Python (absolute; "{controller_python}" = ours)
      env: {NAME: value}          # extra environment of every rank
      shared_paths: [/mnt/share]  # node folders on shared storage
      rank_table_version: "1.0"   # "1.0" | "1.2" (SuperPoD)
      launch_mode: auto           # auto | rank_table | dynamic_cluster (cpu: not rank_table)
      simulated_hardware: path    # simulated clusters only (controller path)
      ascend_root: /usr/local/Ascend  # Ascend install root (CANN set_env.sh, driver); default
                                  # /usr/local/Ascend on Ascend profiles, none on cpu
      scheduler: ssh              # ssh (the node list) | slurm (Slurm gives the nodes; `nodes:` optional)
      slurm: {login: local, nodes: 2, partition: npu, account, qos, time_limit: "12:00:00",
              gres: npu, job_id, exclusive: true}  # scheduler slurm only (orchestrator/slurm/inventory.py)
    job:                          # optional defaults for task options
      model: 13b                  # preset (13b, tiny) or path to a model_config YAML
      tokenizer, train_dataset, eval_dataset, load_checkpoint: paths; output_dir: output
      set: [key=value, ...]       # like --set
    nodes:                        # required, at least one
      - host: 10.0.0.1            # required: address; the rank table server_id
        name: node-a              # expected hostname
        devices: [0, 1]           # default: all devices of the profile
        device_ips: [...]         # one IPv4 per device; default: discovered
        ssh / workdir / python / env / ascend_root: per-node overrides (env merges key by key)
        local: true               # this machine, no SSH; `~` in its node paths is expanded
        super_pod_id: "0"         # rank table 1.2 only
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import sys
from pathlib import Path
from typing import Any, Optional

from orchestrator.errors import InputError
from orchestrator.inventory.fields import Checker
from orchestrator.inventory.located import Located, child_path
from orchestrator.inventory.model import (
    DEFAULT_ASCEND_ROOT,
    ClusterSettings,
    Inventory,
    JobDefaults,
    NodeSpec,
    SshSettings,
)
from orchestrator.inventory.profiles import PROFILES, HardwareProfile
from orchestrator.inventory.rules import (
    check_cluster,
    check_device_ips,
    check_devices,
    check_host,
    check_node_path,
    jump_chain,
)
from orchestrator.slurm import inventory as slurm_inventory

ROOT_KEYS = ("cluster", "job", "nodes")
CLUSTER_KEYS = (
    "name",
    "profile",
    "ssh",
    "workdir",
    "python",
    "env",
    "shared_paths",
    "rank_table_version",
    "launch_mode",
    "simulated_hardware",
    "ascend_root",
    "scheduler",
    "slurm",
)
SSH_KEYS = ("user", "port", "key", "known_hosts", "connect_timeout", "proxy_jump", "config")
JOB_KEYS = ("model", "tokenizer", "train_dataset", "eval_dataset", "load_checkpoint", "output_dir", "set")
NODE_KEYS = (
    "host",
    "name",
    "devices",
    "device_ips",
    "ssh",
    "workdir",
    "python",
    "env",
    "local",
    "super_pod_id",
    "ascend_root",
)
LAUNCH_MODES = ("auto", "rank_table", "dynamic_cluster")
RANK_TABLE_VERSIONS = ("1.0", "1.2")
CONTROLLER_PYTHON = "{controller_python}"


def build_inventory(located: Located, source: str, base_dir: Optional[Path]) -> Inventory:
    """Check everything, then return the inventory or raise InputError with all problems."""
    c = Checker(located, source)
    pre = located.data.get("cluster") if isinstance(located.data, dict) else None
    slurm_mode = isinstance(pre, dict) and pre.get("scheduler") == "slurm"  # Slurm gives the nodes
    root = c.mapping(
        located.data, "", ROOT_KEYS, required=("cluster",) if slurm_mode else ("cluster", "nodes")
    )
    cluster_raw = c.mapping(
        root.get("cluster"), "cluster", CLUSTER_KEYS, required=("name", "profile", "workdir", "python")
    )
    cluster, profile = _cluster(c, cluster_raw, base_dir)
    job = _job(c, root.get("job"))
    raw_nodes = c.items(root.get("nodes"), "nodes", "nodes")
    if "nodes" in root and not raw_nodes and not slurm_mode:
        c.add("nodes", "no nodes", "list at least one node with its `host`")
    nodes = [_node(c, raw, f"nodes[{i}]", cluster, profile, base_dir) for i, raw in enumerate(raw_nodes)]
    if cluster.scheduler == "slurm":
        cluster = dataclasses.replace(cluster, slurm=slurm_inventory.read(c, cluster_raw.get("slurm"),
                                                                          "cluster.slurm", len(nodes)))  # fmt: skip
    elif cluster_raw.get("slurm") is not None:
        c.add("cluster.slurm", "a `slurm:` section without `scheduler: slurm`", "add `scheduler: slurm`")
    check_cluster(c, cluster, nodes, profile)
    if c.problems:
        raise InputError(sorted(c.problems, key=lambda p: (p.line is None, p.line or 0)))
    return Inventory(source, cluster, tuple(_sorted_devices(n) for n in nodes), job)


def _cluster(
    c: Checker, m: dict, base_dir: Optional[Path]
) -> tuple[ClusterSettings, Optional[HardwareProfile]]:
    profile_name = c.string(m, "profile", "cluster", "")
    profile = PROFILES.get(profile_name)
    if profile_name and profile is None:
        c.add(
            "cluster.profile",
            f"unknown hardware profile {profile_name!r}",
            f"use one of {', '.join(sorted(PROFILES))}",
        )
    python = c.string(m, "python", "cluster", "")
    shared = c.strings(m, "shared_paths", "cluster", lambda p, at: check_node_path(c, p, at, local=False))
    simulated = c.string(m, "simulated_hardware", "cluster")
    cluster = ClusterSettings(
        name=c.string(m, "name", "cluster", ""),
        profile=profile_name,
        ssh=_ssh(c, m.get("ssh"), "cluster.ssh", SshSettings(), base_dir),
        workdir=c.string(m, "workdir", "cluster", ""),
        python=python.replace(CONTROLLER_PYTHON, sys.executable),
        env=tuple(sorted(c.env(m, "cluster").items())),
        shared_paths=tuple(shared),
        rank_table_version=c.choice(m, "rank_table_version", "cluster", "1.0", RANK_TABLE_VERSIONS),
        launch_mode=c.choice(m, "launch_mode", "cluster", "auto", LAUNCH_MODES),
        simulated_hardware=_local_path(c, simulated, "cluster.simulated_hardware", base_dir),
        ascend_root=c.string(m, "ascend_root", "cluster"),
        scheduler=c.choice(m, "scheduler", "cluster", "ssh", slurm_inventory.SCHEDULERS),
    )
    return cluster, profile


def _ssh(c: Checker, raw: Any, path: str, base: SshSettings, base_dir: Optional[Path]) -> SshSettings:
    """``base`` updated by the keys present in ``raw`` (cluster defaults, then node overrides)."""
    m = c.mapping(raw, path, SSH_KEYS)
    key, known_hosts = c.string(m, "key", path), c.string(m, "known_hosts", path)
    config = c.string(m, "config", path)
    if config is not None:
        config = _local_path(c, config, child_path(path, "config"), base_dir)
        if config and os.path.isabs(config) and not os.path.isfile(config):
            c.add(
                child_path(path, "config"), f"no OpenSSH config file at {config}", "give the path of a file"
            )
    jumps = (
        base.proxy_jump
        if "proxy_jump" not in m
        else jump_chain(c, m["proxy_jump"], child_path(path, "proxy_jump"))
    )
    return SshSettings(
        user=c.string(m, "user", path, base.user),
        port=c.integer(m, "port", path, base.port, 1, 65535),
        key=base.key if key is None else _local_path(c, key, child_path(path, "key"), base_dir),
        known_hosts=base.known_hosts
        if known_hosts is None
        else _local_path(c, known_hosts, child_path(path, "known_hosts"), base_dir),
        connect_timeout=c.number(m, "connect_timeout", path, base.connect_timeout),
        proxy_jump=jumps,
        config=base.config if config is None else config,
        written=tuple(sorted(set(base.written) | {k for k in m if k in SSH_KEYS})),
    )


def _local_path(c: Checker, value: Optional[str], path: str, base_dir: Optional[Path]) -> Optional[str]:
    """A controller path: ``~`` expanded, relative to the inventory file's folder."""
    if value is None:
        return None
    expanded = os.path.expanduser(value)
    if os.path.isabs(expanded):
        return os.path.normpath(expanded)
    if base_dir is None:
        c.add(
            path,
            f"relative path {value!r} without an inventory file to resolve it against",
            "write an absolute path",
        )
        return value
    return os.path.normpath(os.path.join(base_dir, expanded))


def _home(value: Optional[str]) -> Optional[str]:
    return os.path.expanduser(value) if value else value


def _job(c: Checker, raw: Any) -> JobDefaults:
    m = c.mapping(raw, "job", JOB_KEYS)
    overrides: list[tuple[str, str]] = []

    def parse_set(item: str, at: str) -> None:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or key.strip() != key or " " in key:
            c.add(at, f"{item!r} is not key=value", "write e.g. runner_config.epochs=1")
        else:
            overrides.append((key, value))

    c.strings(m, "set", "job", parse_set)
    defaults = JobDefaults()
    paths = {  # controller paths: `~` is expanded (the local default names the demo dataset so)
        k: _home(c.string(m, k, "job"))
        for k in ("tokenizer", "train_dataset", "eval_dataset", "load_checkpoint")
    }
    return JobDefaults(
        model=c.string(m, "model", "job", defaults.model),
        output_dir=c.string(m, "output_dir", "job", defaults.output_dir),
        overrides=tuple(overrides),
        **paths,
    )


def _node(
    c: Checker,
    raw: Any,
    path: str,
    cluster: ClusterSettings,
    profile: Optional[HardwareProfile],
    base_dir: Optional[Path],
) -> NodeSpec:
    m = c.mapping(raw, path, NODE_KEYS, required=("host",))
    host = c.string(m, "host", path, "")
    if host:
        check_host(c, host, child_path(path, "host"))
    local = c.boolean(m, "local", path, False)
    raw_devices = m.get("devices")
    if raw_devices is None:
        raw_devices = devices = list(range(profile.devices_per_node)) if profile else []
    elif isinstance(raw_devices, list):
        devices = check_devices(c, raw_devices, child_path(path, "devices"), profile)
    else:
        raw_devices = devices = c.items(raw_devices, child_path(path, "devices"), "device ids")
    ips = c.strings(m, "device_ips", path)
    check_device_ips(c, ips, child_path(path, "device_ips"), len(raw_devices))
    env = dict(cluster.env)
    env.update(c.env(m, path))
    super_pod = m.get("super_pod_id")
    if isinstance(super_pod, bool) or not isinstance(super_pod, (str, int, type(None))):
        c.add(child_path(path, "super_pod_id"), "expected a string", 'quote the value, e.g. "0"')
        super_pod = None
    return NodeSpec(
        host=host,
        name=c.string(m, "name", path),
        devices=tuple(devices),
        device_ips=tuple(ips),
        ssh=_ssh(c, m.get("ssh"), child_path(path, "ssh"), cluster.ssh, base_dir),
        workdir=_node_value(c, m, path, "workdir", cluster.workdir, local),
        python=_node_value(c, m, path, "python", cluster.python, local),
        env=tuple(sorted(env.items())),
        local=local,
        super_pod_id=None if super_pod is None else str(super_pod),
        ascend_root=_ascend_root(c, m, path, cluster, profile, local),
    )


_EXAMPLES = {"python": "/usr/local/python3.9/bin/python3", "ascend_root": DEFAULT_ASCEND_ROOT}


def _node_value(c: Checker, m: dict, path: str, key: str, inherited: str, local: bool) -> str:
    """A node path, the node's own or the cluster's; checked where it was written."""
    own = c.string(m, key, path)
    value, origin = (own, child_path(path, key)) if own is not None else (inherited, f"cluster.{key}")
    value = value.replace(CONTROLLER_PYTHON, sys.executable) if key == "python" else value
    if local:
        value = os.path.expanduser(value)
    if value:
        check_node_path(c, value, origin, local, _EXAMPLES.get(key, "/data/orchestrate"))
    return value


def _ascend_root(
    c: Checker, m: dict, path: str, cluster: ClusterSettings, profile: Optional[HardwareProfile], local: bool
) -> Optional[str]:
    """The node's Ascend root: its own, the cluster's, else the default on Ascend profiles (cpu: None)."""
    default = DEFAULT_ASCEND_ROOT if profile is not None and profile.accelerator else None
    inherited = cluster.ascend_root or default
    if inherited is None and m.get("ascend_root") is None:
        return None
    root = _node_value(c, m, path, "ascend_root", inherited or "", local)
    return posixpath.normpath(root) if posixpath.isabs(root) else root


def _sorted_devices(node: NodeSpec) -> NodeSpec:
    """Devices in id order, their IPs kept aligned."""
    if not node.device_ips:
        return dataclasses.replace(node, devices=tuple(sorted(node.devices)))
    pairs = sorted(zip(node.devices, node.device_ips))
    return dataclasses.replace(
        node, devices=tuple(d for d, _ in pairs), device_ips=tuple(ip for _, ip in pairs)
    )
