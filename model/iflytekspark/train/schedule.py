"""The warm-up + cosine schedule as plain Python (no MindSpore), for tests and for reading logs."""

from __future__ import annotations

import math


def warmup_cosine(
    step: int,
    learning_rate: float,
    lr_end: float,
    warmup_steps: int,
    total_steps: int,
    warmup_lr_init: float = 0.0,
) -> float:
    """The learning rate at optimizer step ``step`` (0 for the first update); see :mod:`.lr`."""
    if warmup_steps > 0 and step < warmup_steps:
        return warmup_lr_init + (learning_rate - warmup_lr_init) * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return lr_end + (learning_rate - lr_end) * 0.5 * (1.0 + math.cos(math.pi * progress))
