"""Choosing the next token on the host, in numpy (docs/model.md §5): penalty, temperature, top-k, top-p, draw.

Greedy is the same path with top_k = 1 (do_sample False forces it). Draws come from a seeded
``numpy.random.Generator``, one uniform number per row and step, so runs are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import ConfigError
from ..generation_config import GenerationConfig

__all__ = ["RepetitionPenalty", "Sampler", "best_ids", "check_generation_config", "mask_beyond"]


def check_generation_config(cfg: GenerationConfig) -> None:
    """Raise ConfigError naming every out-of-range setting."""
    problems = []
    if cfg.temperature <= 0:
        problems.append(f"temperature {cfg.temperature} must be > 0")
    if cfg.top_k < 0:
        problems.append(f"top_k {cfg.top_k} must be >= 0 (0: no limit)")
    if not 0 < cfg.top_p <= 1:
        problems.append(f"top_p {cfg.top_p} must be in (0, 1]")
    if cfg.max_new_tokens is not None and cfg.max_new_tokens < 1:
        problems.append(f"max_new_tokens {cfg.max_new_tokens} must be >= 1")
    if problems:
        raise ConfigError("generation config: " + "; ".join(problems))


def mask_beyond(logits: np.ndarray, limit: Optional[int]) -> np.ndarray:
    """``logits`` (B, V) with every id >= ``limit`` set to -inf, so no draw can choose it (a tokenizer
    with fewer pieces than the model's vocabulary cannot decode them). ``limit`` None or >= V: as is."""
    if limit is None or limit >= logits.shape[-1]:
        return logits
    if limit < 1:
        raise ConfigError(f"vocabulary limit {limit} must be >= 1")
    out = logits.astype(np.result_type(logits.dtype, np.float32), copy=True)
    out[..., limit:] = -np.inf
    return out


class RepetitionPenalty:
    """iFlytek's additive, progressive penalty: a [B, V] cache starting at 0 is subtracted from the
    logits; after token t is emitted, cache[t] = penalty if it was 0, else cache[t] += increase.
    Only generated tokens count. A penalty of 1.0 switches it off."""

    def __init__(self, batch: int, vocab: int, penalty: float, increase: float):
        self.enabled = penalty != 1.0
        self.penalty, self.increase = float(penalty), float(increase)
        self.cache = np.zeros((batch, vocab), np.float32)

    def apply(self, logits: np.ndarray) -> np.ndarray:
        return logits - self.cache if self.enabled else logits

    def update(self, tokens: np.ndarray, rows: np.ndarray) -> None:
        """Record ``tokens`` (B,) for the rows where ``rows`` (B,) is True."""
        if not self.enabled:
            return
        idx = np.nonzero(rows)[0]
        current = self.cache[idx, tokens[idx]]
        self.cache[idx, tokens[idx]] = np.where(current == 0, self.penalty, current + self.increase)


def best_ids(logits: np.ndarray, k: int) -> np.ndarray:
    """The k best ids per row (B, k), best first; among equal logits the lower id first."""
    if k == 1:
        return np.argmax(logits, -1)[:, None]  # argmax returns the first maximum
    if k < logits.shape[-1]:
        part = np.sort(np.argpartition(-logits, k - 1, -1)[:, :k], -1)  # the k best, by id
        order = np.argsort(-np.take_along_axis(logits, part, -1), -1, kind="stable")
        return np.take_along_axis(part, order, -1)
    return np.argsort(-logits, -1, kind="stable")


@dataclass
class Sampler:
    """logits (B, V) -> token ids (B,): temperature, then top-k, then top-p, softmax, draw."""

    config: GenerationConfig
    seed: int = 0

    def __post_init__(self) -> None:
        check_generation_config(self.config)
        self.rng = np.random.default_rng(self.seed)
        self.top_k = self.config.top_k if self.config.do_sample else 1

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        logits = logits.astype(np.float64) / self.config.temperature
        vocab = logits.shape[-1]
        k = vocab if self.top_k in (0, None) or self.top_k >= vocab else self.top_k
        candidates = best_ids(logits, k)  # (B, k)
        best = np.take_along_axis(logits, candidates, -1)
        probs = np.exp(best - best[:, :1])
        probs /= probs.sum(-1, keepdims=True)
        if self.config.top_p < 1.0:  # keep the smallest head whose mass reaches top_p
            before = np.cumsum(probs, -1) - probs
            probs = np.where(before < self.config.top_p, probs, 0.0)
            probs /= probs.sum(-1, keepdims=True)
        cdf = np.cumsum(probs, -1)
        draws = self.rng.random(len(logits))[:, None] * cdf[:, -1:]
        choice = np.minimum((cdf <= draws).sum(-1), k - 1)  # first index whose cdf exceeds the draw
        return candidates[np.arange(len(logits)), choice].astype(np.int32)
