"""Sampling settings, kept apart from the architecture (docs/model.md §1 defaults, §5 semantics)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, Optional


@dataclass(frozen=True)
class GenerationConfig:
    """How tokens are chosen. Greedy is do_sample=False (equivalently top_k=1)."""

    do_sample: bool = False
    top_k: int = 1
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.0  # additive, progressive; 1.0 switches it off
    repetition_penalty_increase: float = 0.1
    max_new_tokens: Optional[int] = None  # None: up to the model's seq_length

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> GenerationConfig:
        """Pick the known keys out of a bigger mapping (e.g. a reference model_config)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names and v is not None})
