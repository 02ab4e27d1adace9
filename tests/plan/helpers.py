"""Inventories for plan tests, built directly from the inventory dataclasses (no YAML, no SSH)."""

from __future__ import annotations

from typing import Optional, Sequence

from orchestrator.inventory.model import ClusterSettings, Inventory, JobDefaults, NodeSpec, SshSettings

A2, A800, CPU = "atlas-800t-a2-64g", "atlas-800-32g", "cpu"


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
) -> Inventory:
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
