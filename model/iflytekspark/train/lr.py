"""Linear warm-up, then cosine decay to ``lr_end`` (docs/model.md §4), as a MindSpore LearningRateSchedule.

``global_step`` is the optimizer's step counter before the update (0 for the first step):
  step < warmup_steps:  warmup_lr_init + (learning_rate - warmup_lr_init) * step / warmup_steps
  otherwise:            lr_end + (learning_rate - lr_end) * 0.5 * (1 + cos(pi * p)),
                        p = min(1, (step - warmup_steps) / max(1, total_steps - warmup_steps))
:func:`.schedule.warmup_cosine` is the same formula in plain Python.
"""

from __future__ import annotations

import math

from mindformers.tools.register import MindFormerModuleType, MindFormerRegister
from mindspore import Tensor, ops
from mindspore import dtype as mstype
from mindspore.nn.learning_rate_schedule import LearningRateSchedule


@MindFormerRegister.register(MindFormerModuleType.LR)
class WarmUpCosineLR(LearningRateSchedule):
    """Warm-up then cosine to lr_end. Extra keywords the Trainer may pass (warmup_ratio, ...) are ignored
    unless named here; ``warmup_ratio`` sets warm-up as a fraction of total_steps when given."""

    def __init__(
        self,
        learning_rate: float,
        lr_end: float = 0.0,
        warmup_steps: int = 0,
        total_steps: int = 1,
        warmup_lr_init: float = 0.0,
        warmup_ratio: float = None,
        **kwargs,
    ):
        super().__init__()
        if total_steps is None or total_steps < 1:
            raise ValueError(f"WarmUpCosineLR: total_steps must be >= 1, got {total_steps}")
        if warmup_ratio is not None:
            warmup_steps = int(total_steps * warmup_ratio)
        self.learning_rate = float(learning_rate)
        self.lr_end = float(lr_end)
        self.warmup_lr_init = float(warmup_lr_init)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.decay_steps = Tensor(max(1, self.total_steps - self.warmup_steps), mstype.float32)
        self.warmup = Tensor(max(1, self.warmup_steps), mstype.float32)
        self.start = Tensor(self.warmup_steps, mstype.float32)

    def construct(self, global_step):
        step = ops.cast(global_step, mstype.float32)
        warm = self.warmup_lr_init + (self.learning_rate - self.warmup_lr_init) * step / self.warmup
        progress = ops.clamp((step - self.start) / self.decay_steps, 0.0, 1.0)
        cosine = self.lr_end + (self.learning_rate - self.lr_end) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.select(step < self.start, warm, cosine)
