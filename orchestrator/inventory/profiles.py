"""Hardware profiles: what a node of each supported kind offers and which rules its devices follow.

Facts from docs/ascend-cluster.md §1, §7-§9 and docs/model.md §9. A profile is pure data;
validation, discovery, doctor and planning read it, nothing here touches a node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import AbstractSet, Mapping, Optional

# The pinned software stack (MindFormers r1.7.0 installation guide, "Confirming Version Matching
# Relationship"): it lists Atlas 800T A2, Atlas 800I A2 and Atlas 900 A3 SuperPoD, not Atlas 800 (910A).
PINNED_STACK = "MindFormers 1.7.0 / MindSpore 2.7.1 / CANN 8.3.RC1"
TASKS = ("pretrain", "finetune", "lora", "predict", "predict_lora", "export", "eval")
INFERENCE_TASKS = ("predict", "predict_lora", "export", "eval")


@dataclass(frozen=True)
class Layout:
    """A parallel layout: data x model x pipeline; their product is the world size."""

    dp: int
    mp: int
    pp: int = 1

    @property
    def world(self) -> int:
        return self.dp * self.mp * self.pp


def chip_model(name: str) -> str:
    """npu-smi's chip Name without the "Ascend" prefix some drivers print: "Ascend910B4" -> "910B4"."""
    text = name.strip()
    if text.lower().startswith("ascend"):
        text = text[len("ascend") :]
    return text.strip()


@dataclass(frozen=True)
class HardwareProfile:
    """One kind of node.

    ``nic_groups`` lists the sets of device ids that share one NIC subnet (Atlas 800: 0/4, 1/5, 2/6,
    3/7; Atlas 800T A2: all eight). ``device_groups`` lists the device sets a job may use on one node
    (Atlas 800: [0,4), [4,8) or all 8), empty meaning any subset; ``hiam_pairs`` (Atlas A3) are the
    chips joined by SIO: a node uses one chip or whole pairs. ``layouts`` are the reference layouts per
    task (docs/model.md §9) and name the tasks the profile runs. ``chip_names`` are regular expressions
    (full match) of the chip Name npu-smi prints, "Ascend" prefix removed (:func:`chip_model`);
    ``device_memory_gb`` is the HBM per device (npu-smi's HBM total, 1024 MB a GB). ``flash_attention``:
    the FlashAttentionScore operator exists there (CANN operator table: Atlas A2/A3 training products).
    ``stack_note`` is said by every plan on the profile (e.g. the pinned stack does not support it).
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
    flash_attention: bool = False
    chip_names: tuple[str, ...] = ()
    chips_per_npu: int = 1
    hiam_pairs: tuple[tuple[int, int], ...] = ()
    rank_table_version: str = "1.0"
    stack_note: Optional[str] = None

    def layout_for(self, task: str) -> Optional[Layout]:
        return self.layouts.get(task)

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks this profile runs (those with a layout), in TASKS order."""
        return tuple(t for t in TASKS if t in self.layouts)

    def chip_matches(self, name: str) -> bool:
        return any(re.fullmatch(p, chip_model(name), re.IGNORECASE) for p in self.chip_names)

    def memory_matches(self, hbm_total_mb: int) -> bool:
        """npu-smi's HBM total within 10% of the profile's (64 GB prints 65536, 32 GB 32768)."""
        expected = self.device_memory_gb * 1024
        return abs(hbm_total_mb - expected) <= 0.1 * expected

    def pair_problem(self, devices: AbstractSet[int]) -> Optional[str]:
        """Why ``devices`` break the HiAM pair rule (None when they keep it or there are no pairs)."""
        if not self.hiam_pairs or len(devices) <= 1:
            return None
        split = [p for p in self.hiam_pairs if len(set(p) & set(devices)) == 1]
        if not split:
            return None
        pairs = ", ".join(f"{a}/{b}" for a, b in split)
        return (
            f"devices {sorted(devices)} split HiAM pair(s) {pairs}: on {self.name} a node uses one chip "
            f"or whole pairs ({', '.join(f'{a}/{b}' for a, b in self.hiam_pairs[:2])}, ...)"
        )


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
_A2_MEMORY = {
    "pretrain": 58.0,
    "finetune": 58.0,
    "lora": 59.0,
    "predict": 59.0,
    "predict_lora": 59.0,
    "export": 59.0,
    "eval": 59.0,
}
# Atlas 800I A2 (inference server): no reference YAML exists. 64 GB keeps the 800T A2 values; 32 GB
# (910B4) keeps 3 GB free, the 2.9 GB an idle 910B4 already uses in npu-smi (captures of public hosts).
_A2I_64_LAYOUTS = {t: Layout(1, 1) for t in INFERENCE_TASKS}
_A2I_32_LAYOUTS = {t: Layout(1, 2) for t in INFERENCE_TASKS}  # 13B fp16 weights (26.6 GB) need mp 2
_A2_NAMES = ("910B", "910B1", "910B2", "910B2C", "910B3")  # Atlas 800T A2 (training), 64 GB
_A800_NOTE = (
    f"the pinned stack ({PINNED_STACK}) does not support Atlas 800 (Ascend 910A): MindFormers 1.7.0 "
    "lists Atlas 800T A2, 800I A2 and 900 A3 SuperPoD only. This plan is kept for reference: flash "
    "attention is off (FlashAttentionScore exists on A2/A3 only) and the memory estimate counts the "
    "dense attention, no sequence parallelism and no recompute slicing (the model implements neither)"
)

PROFILES: dict[str, HardwareProfile] = {
    "atlas-800t-a2-64g": HardwareProfile(
        name="atlas-800t-a2-64g",
        description="Atlas 800T A2, 8x Ascend 910B 64 GB, one NIC subnet per node",
        devices_per_node=8,
        device_memory_gb=64.0,
        max_device_memory_gb=_A2_MEMORY,
        train_dtype="bfloat16",
        infer_dtype="float16",
        loss_scale="fixed",
        nic_groups=(tuple(range(8)),),
        device_groups=(),
        layouts=_A2_LAYOUTS,
        seq_parallel=False,
        recompute_slice=False,
        is_dynamic_export=True,
        flash_attention=True,
        chip_names=_A2_NAMES,
    ),
    "atlas-800i-a2-32g": HardwareProfile(
        name="atlas-800i-a2-32g",
        description="Atlas 800I A2 inference server, 8x Ascend 910B4 32 GB, one NIC subnet per node",
        devices_per_node=8,
        device_memory_gb=32.0,
        max_device_memory_gb={t: 29.0 for t in INFERENCE_TASKS},
        train_dtype="bfloat16",
        infer_dtype="float16",
        loss_scale="fixed",
        nic_groups=(tuple(range(8)),),
        device_groups=(),
        layouts=_A2I_32_LAYOUTS,
        seq_parallel=False,
        recompute_slice=False,
        is_dynamic_export=False,  # mp 2
        chip_names=("910B4",),
    ),
    "atlas-800i-a2-64g": HardwareProfile(
        name="atlas-800i-a2-64g",
        description="Atlas 800I A2 inference server, 8x Ascend 910B 64 GB, one NIC subnet per node",
        devices_per_node=8,
        device_memory_gb=64.0,
        max_device_memory_gb={t: _A2_MEMORY[t] for t in INFERENCE_TASKS},
        train_dtype="bfloat16",
        infer_dtype="float16",
        loss_scale="fixed",
        nic_groups=(tuple(range(8)),),
        device_groups=(),
        layouts=_A2I_64_LAYOUTS,
        seq_parallel=False,
        recompute_slice=False,
        is_dynamic_export=True,
        chip_names=("910B3", "910B4-1"),
    ),
    "atlas-900-a3-64g": HardwareProfile(
        name="atlas-900-a3-64g",
        description="Atlas 900 A3 SuperPoD node, 8 NPUs x 2 chips (16 devices, HiAM pairs), 64 GB a chip",
        devices_per_node=16,
        device_memory_gb=64.0,
        max_device_memory_gb=_A2_MEMORY,
        train_dtype="bfloat16",
        infer_dtype="float16",
        loss_scale="fixed",
        nic_groups=(),
        device_groups=(),
        layouts=_A2_LAYOUTS,
        seq_parallel=False,
        recompute_slice=False,
        is_dynamic_export=True,
        flash_attention=True,
        chip_names=("910",),  # npu-smi info prints "Ascend910" for every A3 chip
        chips_per_npu=2,
        hiam_pairs=tuple((2 * i, 2 * i + 1) for i in range(8)),
        rank_table_version="1.2",
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
        chip_names=("910A", "910ProA", "910ProB", "910PremiumA"),
        stack_note=_A800_NOTE,
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


def get_profile(name: str) -> HardwareProfile:
    """The profile called ``name``; KeyError lists the known names."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown hardware profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None


def profiles_matching(chip_name: str, hbm_total_mb: Optional[int]) -> tuple[HardwareProfile, ...]:
    """The accelerator profiles whose chip names (and HBM, when known) fit what npu-smi reported."""
    return tuple(
        p
        for p in PROFILES.values()
        if p.accelerator
        and p.chip_matches(chip_name)
        and (hbm_total_mb is None or p.memory_matches(hbm_total_mb))
    )
