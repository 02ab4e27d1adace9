"""KVCache: the true sliding window of keys and values for incremental decoding (docs/model.md §5).

The cache holds the last C = min(W, longest row) slots of every layer, W = sparse_local_size, so a step
attends to exactly the keys full recomputation would (the reference's ring of W slots was wrong past
W + 1 tokens). Rows are left-padded to one length; pad slots are marked invalid and never attended to.
Keys are stored after RoPE with each row's absolute positions, so evicting slots never moves a key.
A decode step costs O(C) per layer, not O(T^2).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from mindspore import Tensor, ops

from .steps import Steps

__all__ = ["KVCache", "left_pad"]


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> np.ndarray:
    """(B, S) int32 of the prompts right-aligned, S = the longest, pad_id on the left."""
    width = max(len(p) for p in prompts)
    batch = np.full((len(prompts), width), pad_id, dtype=np.int32)
    for row, ids in enumerate(prompts):
        batch[row, width - len(ids) :] = ids
    return batch


class KVCache:
    """Keys and values (L, B, nh, C, d), valid (B, C) bool, and each row's next absolute position.

    ``capacity``: the longest a row can get (prompt + new tokens); C = min(capacity, W).
    Fill it with :meth:`prefill` (the prompt pass), then call :meth:`decode` once per new token.
    """

    def __init__(self, steps: Steps, capacity: int):
        self.capacity = max(1, min(int(capacity), steps.window))
        self.steps = steps
        self.keys = self.values = self.valid = None
        self.positions = np.zeros(0, np.int32)

    def prefill(self, prompts: Sequence[Sequence[int]], pad_id: int = 0) -> np.ndarray:
        """Run the prompts (lists of ids, any lengths) and keep their last C slots; logits (B, V) of
        each prompt's last token, as numpy float32."""
        tokens = left_pad(prompts, pad_id)
        lengths = np.array([len(p) for p in prompts], np.int32)
        width = tokens.shape[1]
        pads = (width - lengths)[:, None]
        slots = np.arange(width, dtype=np.int32)[None, :]
        positions = np.maximum(slots - pads, 0).astype(np.int32)  # a row's first token is position 0
        key_valid = slots >= pads
        logits, keys, values = self.steps.prefill(Tensor(tokens), Tensor(positions), Tensor(key_valid))
        self.keys, self.values = self._fit(keys), self._fit(values)
        self.valid = Tensor(self._fit_numpy(key_valid))
        self.positions = lengths.copy()
        return logits.asnumpy()

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Append one token per row (B,) and return the logits (B, V) that follow it."""
        ids = Tensor(np.asarray(tokens, np.int32).reshape(-1, 1))
        positions = Tensor(self.positions.reshape(-1, 1))
        logits, self.keys, self.values, self.valid = self.steps.decode(
            ids, positions, self.keys, self.values, self.valid
        )
        self.positions = self.positions + 1
        return logits.asnumpy()

    def _fit(self, x: Tensor) -> Tensor:
        """(L, B, nh, S, d) -> (L, B, nh, C, d): the last C slots, zero slots prepended if S < C."""
        width = x.shape[3]
        if width >= self.capacity:
            return x[:, :, :, width - self.capacity :]
        shape = x.shape[:3] + (self.capacity - width, x.shape[4])
        return ops.concat((ops.zeros(shape, x.dtype), x), 3)

    def _fit_numpy(self, valid: np.ndarray) -> np.ndarray:
        width = valid.shape[1]
        if width >= self.capacity:
            return np.ascontiguousarray(valid[:, width - self.capacity :])
        return np.concatenate([np.zeros((valid.shape[0], self.capacity - width), bool), valid], 1)
