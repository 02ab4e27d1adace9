"""Training pieces registered with MindFormers: AdamW, the LR schedule and the train-one-step cell.

Importing this package registers ``SparkAdamW`` (alias ``AdamWeightDecayX``), ``WarmUpCosineLR`` and
``SparkTrainOneStepCell`` so that a YAML can name them.
"""

from __future__ import annotations

from .lr import WarmUpCosineLR, warmup_cosine
from .optimizer import SparkAdamW
from .wrapper import SparkTrainOneStepCell

__all__ = ["SparkAdamW", "SparkTrainOneStepCell", "WarmUpCosineLR", "warmup_cosine"]
