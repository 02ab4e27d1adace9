"""Inventories for plan tests, built directly from the inventory dataclasses (no YAML, no SSH)."""

from __future__ import annotations

from typing import Optional, Sequence

from orchestrator.inventory.model import (
    DEFAULT_ASCEND_ROOT,
    ClusterSettings,
    Inventory,
    JobDefaults,
    NodeSpec,
    SshSettings,
)

A2, A800, CPU = "atlas-800t-a2-64g", "atlas-800-32g", "cpu"
# 13B training fits an Atlas 800 (no flash attention: dense S x S scores) only with shorter rows
A800_SHORT = (("model.seq_length", "8192"),)


def device_ip(profile: str, node_index: int, device: int) -> str:
    """A2: one subnet per node; Atlas 800: devices d and d+4 share subnet d % 4."""
    if profile == A800:
        return f"192.168.{10 + device % 4}.{node_index * 8 + device + 1}"
    return f"192.168.1.{node_index * 8 + device + 1}"


def make_inventory(
    profile: str = A2,
    hosts: Sequence[str] = ("10.0.0.1",),
    devices: int = 8,
    ips: bool = True,
    launch_mode: str = "auto",
    model: str = "13b",
    env: tuple[tuple[str, str], ...] = (),
    overrides: tuple[tuple[str, str], ...] = (),
    shared_paths: tuple[str, ...] = (),
    train_dataset: Optional[str] = None,
    load_checkpoint: Optional[str] = None,
    name: str = "test",
    ascend_root: Optional[str] = "default",
) -> Inventory:
    """``ascend_root`` "default": /usr/local/Ascend on Ascend profiles, none on cpu (as validation does)."""
    if ascend_root == "default":
        ascend_root = None if profile == CPU else DEFAULT_ASCEND_ROOT
    ssh = SshSettings()
    nodes = tuple(
        NodeSpec(
            host=h,
            name=f"node{i}",
            devices=tuple(range(devices)),
            device_ips=tuple(device_ip(profile, i, d) for d in range(devices)) if ips else (),
            ssh=ssh,
            workdir="/opt/spark",
            python="/usr/bin/python3",
            env=env,
            ascend_root=ascend_root,
        )
        for i, h in enumerate(hosts)
    )
    cluster = ClusterSettings(
        name=name,
        profile=profile,
        ssh=ssh,
        workdir="/opt/spark",
        python="/usr/bin/python3",
        env=env,
        shared_paths=shared_paths,
        launch_mode=launch_mode,
    )
    job = JobDefaults(
        model=model, train_dataset=train_dataset, load_checkpoint=load_checkpoint, overrides=overrides
    )
    return Inventory(source="test-inventory.yaml", cluster=cluster, nodes=nodes, job=job)


def a3_discovery(inventory, super_pod_id: str = "0"):
    """What discovery reads on Atlas A3 nodes (npu-smi's Phy-IDs, hccn_tool's IPs, spod-info's SDIDs):
    server k's chip d has SDID k << 22 | (d // 2) << 18 | (d % 2) << 16 | d."""
    from orchestrator.discover.model import DeviceState, Discovery, NodeDiscovery

    nodes = []
    for k, spec in enumerate(inventory.nodes):
        devices = tuple(
            DeviceState(
                device_id=d,
                name="Ascend910",
                health="OK",
                ip=f"192.168.{20 + k}.{d + 1}",
                ip_source="hccn_tool",
                npu_id=d // 2,
                chip_id=d % 2,
                hbm_total_mb=65536,
                super_device_id=str(k << 22 | (d // 2) << 18 | (d % 2) << 16 | d),
                super_pod_id=super_pod_id,
            )
            for d in range(16)
        )
        nodes.append(NodeDiscovery(spec.host, f"a3-{k}", "/usr/local/sbin/npu-smi", "/x/hccn_tool", devices))
    return Discovery(tuple(nodes))
