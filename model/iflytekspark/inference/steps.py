"""The two graphs of cached inference, as cells with tensor-only signatures (so they export to MindIR).

Rows are left-padded, so slot s of every row is the same step of the loop and the last C slots of the
cache are the last C steps of every row. Positions stay absolute per row (RoPE), pad slots are masked.
"""

from __future__ import annotations

from typing import Any

import mindspore.common.dtype as mstype
from mindspore import nn, ops

from ..attention import rope_tables, window_mask
from ..model import layer_with_past

__all__ = ["PrefillStep", "DecodeStep", "Steps"]


class _Step(nn.Cell):
    """Shared parts: the model's cells, RoPE for (B, S) positions, the tied head on (B, H) states."""

    def __init__(self, model: Any):
        super().__init__(auto_prefix=False)  # keep the model's parameter names (checkpoint names)
        self.model = model
        self.core = model.transformer  # IFlytekSparkModel
        self.num_layers = len(self.core.transformer.layers)
        self.window = model.config.sparse_local_size

    def rope(self, positions):
        cos, sin = rope_tables(positions, self.core.inv_freq)  # (B, S, d)
        return ops.expand_dims(cos, 1), ops.expand_dims(sin, 1)  # (B, 1, S, d): one table per row

    def head(self, x):
        """Float32 logits (B, V) of the final states x (B, 1, H)."""
        h = self.core.transformer.layernorm(x)
        h = ops.reshape(h, (h.shape[0], h.shape[-1]))
        return self.model.head(h, self.core.embedding.word_embeddings.embedding_table)  # float32, tied


class PrefillStep(_Step):
    """Prompt pass: tokens (B, S) int32 left-padded, positions (B, S) int32, key_valid (B, S) bool
    -> logits (B, V) of the last slot, keys and values (L, B, nh, S, d) of every slot."""

    def construct(self, tokens, positions, key_valid):
        slots = ops.arange(0, tokens.shape[1], dtype=mstype.int32)
        mask = window_mask(slots, slots, self.window)  # (S, S): causal sliding window
        mask = ops.logical_and(mask, ops.expand_dims(ops.expand_dims(key_valid, 1), 1))  # (B, 1, S, S)
        cos, sin = self.rope(positions)
        x = self.core.embedding(tokens)  # (B, S, H)
        keys, values = [], []
        for i in range(self.num_layers):
            x, k, v = layer_with_past(self.core.transformer.layers[i], x, cos, sin, mask)
            keys.append(k)
            values.append(v)
        return self.head(x[:, -1:]), ops.stack(keys), ops.stack(values)


class DecodeStep(_Step):
    """One new token per row: tokens (B, 1), positions (B, 1), keys/values (L, B, nh, C, d), valid (B, C)
    -> logits (B, V), and the cache shifted by one slot: oldest slot out, the new token's in at the end.

    C <= W (the window), so the shifted cache is exactly what the new token may see."""

    def construct(self, tokens, positions, keys, values, valid):
        new = ops.ones((valid.shape[0], 1), mstype.bool_)
        valid = ops.concat((valid[:, 1:], new), 1)  # (B, C)
        mask = ops.expand_dims(ops.expand_dims(valid, 1), 1)  # (B, 1, 1, C)
        cos, sin = self.rope(positions)
        x = self.core.embedding(tokens)  # (B, 1, H)
        new_keys, new_values = [], []
        for i in range(self.num_layers):
            layer = self.core.transformer.layers[i]
            x, k, v = layer_with_past(layer, x, cos, sin, mask, keys[i][:, :, 1:], values[i][:, :, 1:])
            new_keys.append(k)
            new_values.append(v)
        return self.head(x), ops.stack(new_keys), ops.stack(new_values), valid


class Steps:
    """Both graphs of one model. Make it once per model: in graph mode each cell compiles once per shape."""

    def __init__(self, model: Any):
        model.set_train(False)
        self.model = model
        self.prefill = PrefillStep(model)
        self.decode = DecodeStep(model)
        self.window = model.config.sparse_local_size
