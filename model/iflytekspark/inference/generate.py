"""The generation loop: prefill once, then sample and decode one token per step for the whole batch.

Prompts of different lengths are left-padded into one batch (see :mod:`.kv_cache`). ``max_length``
bounds each row's prompt + answer (the reference's max_length); a row stops at ``<end>`` (id 5) or at
that bound, the batch when every row has stopped. Finished rows are fed ``pad_id`` and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

import numpy as np

from ..errors import IFlytekSparkError
from ..generation_config import GenerationConfig
from .kv_cache import KVCache
from .sampling import RepetitionPenalty, Sampler, mask_beyond
from .steps import Steps

__all__ = ["GenerationError", "Generated", "generate"]

# on_step(tokens (B,), active (B,)): the tokens just chosen and which rows they count for
StepCallback = Callable[[np.ndarray, np.ndarray], None]


class GenerationError(IFlytekSparkError, ValueError):
    """The prompts cannot be generated from (empty, or no room left under the length limit)."""


@dataclass
class Generated:
    """New token ids per row (``<end>`` not included), whether each row ended with ``<end>``, and
    (keep_logits) the model's logits (B, V) before every step's choice."""

    tokens: List[List[int]]
    ended: List[bool]
    logits: List[np.ndarray] = field(default_factory=list)


def check_prompts(prompts: Sequence[Sequence[int]], max_length: int) -> None:
    """Every prompt non-empty and shorter than max_length; one error naming every bad row."""
    problems = [f"prompt {i}: empty" for i, p in enumerate(prompts) if not len(p)]
    problems += [
        f"prompt {i}: {len(p)} tokens, no room for an answer under the length limit {max_length}"
        for i, p in enumerate(prompts)
        if len(p) >= max_length
    ]
    if not prompts:
        problems.append("no prompts")
    if problems:
        raise GenerationError("cannot generate:\n" + "\n".join(f"  - {p}" for p in problems))


def generate(
    steps: Steps,
    prompts: Sequence[Sequence[int]],
    config: Optional[GenerationConfig] = None,
    max_length: Optional[int] = None,
    *,
    eos_id: int = 5,
    pad_id: int = 0,
    seed: int = 0,
    on_step: Optional[StepCallback] = None,
    keep_logits: bool = False,
    vocab_limit: Optional[int] = None,
) -> Generated:
    """Answer every prompt (lists of ids). config: default greedy; max_length: prompt + answer per row
    (default seq_length); vocab_limit: ids at or beyond it are never chosen (the tokenizer's piece count
    when it is smaller than the model's vocabulary)."""
    config = config or GenerationConfig()
    max_length = int(max_length or steps.model.config.seq_length)
    check_prompts(prompts, max_length)
    budget = np.array([max_length - len(p) for p in prompts])
    if config.max_new_tokens:
        budget = np.minimum(budget, config.max_new_tokens)
    cache = KVCache(steps, capacity=max_length)
    sample = Sampler(config, seed)
    logits = cache.prefill(prompts, pad_id)
    penalty = RepetitionPenalty(*logits.shape, config.repetition_penalty, config.repetition_penalty_increase)
    out = Generated([[] for _ in prompts], [False] * len(prompts))
    active = np.ones(len(prompts), bool)
    for step in range(int(budget.max())):
        if keep_logits:
            out.logits.append(logits)
        tokens = sample(penalty.apply(mask_beyond(logits, vocab_limit)))
        penalty.update(tokens, active)
        if on_step is not None:
            on_step(tokens, active.copy())
        for row in np.nonzero(active)[0]:
            out.ended[row] = bool(tokens[row] == eos_id)
            if not out.ended[row]:
                out.tokens[row].append(int(tokens[row]))
        active &= (tokens != eos_id) & (step + 1 < budget)
        if not active.any():
            break
        logits = cache.decode(np.where(active, tokens, pad_id))
    return out
