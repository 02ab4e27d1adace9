"""Hardware profiles: what a node of each supported kind offers and which rules its devices follow.

Facts from docs/ascend-cluster.md §1, §9 and docs/model.md §9. A profile is pure data;
validation and planning read it, nothing here touches a node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional


@dataclass(frozen=True)
class Layout:
    """A parallel layout: data x model x pipeline; their product is the world size."""

    dp: int
    mp: int
    pp: int = 1

    @property
    def world(self) -> int:
        return self.dp * self.mp * self.pp


@dataclass(frozen=True)
class HardwareProfile:
    """One kind of node.

    ``nic_groups`` lists the sets of device ids that share one NIC subnet (Atlas 800: 0/4, 1/5, 2/6,
    3/7; Atlas 800T A2: all eight). ``device_groups`` lists the device sets a job may use on one node
    (Atlas 800: [0,4), [4,8) or all 8), empty meaning any subset. ``layouts`` are the reference
    layouts per task (docs/model.md §9); ``min_nodes`` is the node count a task needs with that layout.
    """

    name: str
    description: str
    devices_per_node: int
    device_memory_gb: float
    max_device_memory_gb: Mapping[str, float]
    train_dtype: str
    infer_dtype: str
    loss_scale: str  # "fixed" | "dynamic"
    nic_groups: tuple[tuple[int, ...], ...]
    device_groups: tuple[tuple[int, ...], ...]
    layouts: Mapping[str, Layout]
    seq_parallel: bool
    recompute_slice: bool
    is_dynamic_export: bool
    accelerator: bool = True

    def layout_for(self, task: str) -> Optional[Layout]:
        return self.layouts.get(task)


_A2_LAYOUTS = {
    "pretrain": Layout(2, 4),
    "finetune": Layout(2, 4),
    "lora": Layout(4, 2),
    "predict": Layout(1, 1),
    "predict_lora": Layout(1, 1),
    "export": Layout(1, 1),
    "eval": Layout(1, 1),
}
_A800_LAYOUTS = {
    "pretrain": Layout(2, 8),
    "finetune": Layout(2, 8),
    "lora": Layout(1, 8),
    "predict": Layout(1, 2),
    "predict_lora": Layout(1, 2),
    "export": Layout(1, 2),
    "eval": Layout(1, 2),
}

PROFILES: dict[str, HardwareProfile] = {
    "atlas-800t-a2-64g": HardwareProfile(
        name="atlas-800t-a2-64g",
        description="Atlas 800T A2, 8x Ascend 910B 64 GB, one NIC subnet per node",
        devices_per_node=8,
        device_memory_gb=64.0,
        max_device_memory_gb={
            "pretrain": 58.0,
            "finetune": 58.0,
            "lora": 59.0,
            "predict": 59.0,
            "predict_lora": 59.0,
            "export": 59.0,
            "eval": 59.0,
        },
        train_dtype="bfloat16",
        infer_dtype="float16",
        loss_scale="fixed",
        nic_groups=(tuple(range(8)),),
        device_groups=(),
        layouts=_A2_LAYOUTS,
        seq_parallel=False,
        recompute_slice=False,
        is_dynamic_export=True,
    ),
    "atlas-800-32g": HardwareProfile(
        name="atlas-800-32g",
        description="Atlas 800 (9000/9010), 8x Ascend 910A 32 GB, four NIC subnets (0/4, 1/5, 2/6, 3/7)",
        devices_per_node=8,
        device_memory_gb=32.0,
        max_device_memory_gb={t: 31.0 for t in _A800_LAYOUTS},
        train_dtype="float16",
        infer_dtype="float16",
        loss_scale="dynamic",
        nic_groups=((0, 4), (1, 5), (2, 6), (3, 7)),
        device_groups=((0, 1, 2, 3), (4, 5, 6, 7), tuple(range(8))),
        layouts=_A800_LAYOUTS,
        seq_parallel=True,
        recompute_slice=True,
        is_dynamic_export=False,
    ),
    "cpu": HardwareProfile(
        name="cpu",
        description="CPU rehearsal: MindSpore CPU backend, data parallel only (dynamic cluster)",
        devices_per_node=2,
        device_memory_gb=8.0,
        max_device_memory_gb={t: 8.0 for t in _A2_LAYOUTS},
        train_dtype="float32",
        infer_dtype="float32",
        loss_scale="fixed",
        nic_groups=(),
        device_groups=(),
        layouts={t: Layout(1, 1) for t in _A2_LAYOUTS},
        seq_parallel=False,
        recompute_slice=False,
        is_dynamic_export=True,
        accelerator=False,
    ),
}

TASKS = ("pretrain", "finetune", "lora", "predict", "predict_lora", "export", "eval")


def get_profile(name: str) -> HardwareProfile:
    """The profile called ``name``; KeyError lists the known names."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown hardware profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None
