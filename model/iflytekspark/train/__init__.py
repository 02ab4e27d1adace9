"""Training pieces for MindFormers: AdamW (``optimizer``), the LR schedule (``lr``) and the train-one-step
cell (``wrapper``). Importing the package is cheap; :func:`register` imports the three modules (and with
them MindSpore), which registers ``SparkAdamW`` (alias ``AdamWeightDecayX``), ``WarmUpCosineLR`` and
``SparkTrainOneStepCell`` so that a YAML can name them.
"""

from __future__ import annotations


def register() -> None:
    """Register the optimizer, LR schedule and wrapper with MindFormers (idempotent)."""
    from . import lr, optimizer, wrapper  # noqa: F401  (their decorators register them)
