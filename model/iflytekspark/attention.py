"""Causal sliding-window self-attention with rotary positions (docs/model.md §2).

Query i sees keys j with i - W + 1 <= j <= i (W = sparse_local_size), in every layer. Two paths:
the dense path below (mask built per forward from positions, never a Parameter; CPU and tests) and,
selected by ``use_flash_attention``, Ascend's fused FlashAttentionScore in band mode.
"""

from __future__ import annotations

import math
from typing import Any, Tuple

import mindspore.common.dtype as mstype
import numpy as np
from mindspore import Tensor, nn, ops
from mindspore.ops import operations as P
from mindspore.ops.operations.nn_ops import FlashAttentionScore

from .layers import Linear, cast_to, dp_mp

__all__ = [
    "rope_inv_freq",
    "rope_tables",
    "apply_rope",
    "window_mask",
    "windowed_attention",
    "FlashWindowAttention",
    "Attention",
]

_MASKED = -1e30  # added where a key is outside the window; exp() of it is exactly 0 in float32


def rope_inv_freq(head_dim: int, theta: float) -> Tensor:
    """inv_freq[i] = theta^(-2i/d), i < d/2, as a float32 constant."""
    exponents = np.arange(0, head_dim, 2, dtype=np.float64) / head_dim
    return Tensor((theta**-exponents).astype(np.float32))


def rope_tables(positions: Tensor, inv_freq: Tensor) -> Tuple[Tensor, Tensor]:
    """cos, sin of shape (S, d) for integer positions (S,): angles = concat(p*inv_freq, p*inv_freq)."""
    angles = ops.expand_dims(ops.cast(positions, mstype.float32), -1) * ops.expand_dims(inv_freq, 0)
    angles = ops.concat((angles, angles), -1)
    return ops.cos(angles), ops.sin(angles)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x*cos + rotate_half(x)*sin in float32, rotate_half(x) = concat(-x[d/2:], x[:d/2]); x (B, nh, S, d)."""
    dtype = x.dtype
    x = cast_to(x, mstype.float32)
    half = x.shape[-1] // 2
    rotated = ops.concat((-x[..., half:], x[..., :half]), -1)
    return cast_to(x * cos + rotated * sin, dtype)


def window_mask(q_positions: Tensor, k_positions: Tensor, window: int) -> Tensor:
    """Boolean (Sq, Sk): True where 0 <= q - k < window (causal sliding window)."""
    diff = ops.expand_dims(q_positions, -1) - ops.expand_dims(k_positions, 0)
    return ops.logical_and(diff >= 0, diff < window)


def windowed_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor, scale: float, softmax_dtype: Any
) -> Tensor:
    """softmax(q k^T * scale, masked) v. q (B, nh, Sq, d); k, v (B, nh, Sk, d); mask broadcasts to scores."""
    scores = ops.matmul(q * scale, ops.swapaxes(k, -1, -2))  # (B, nh, Sq, Sk)
    scores = ops.where(mask, cast_to(scores, softmax_dtype), _MASKED)
    probs = cast_to(ops.softmax(scores, -1), v.dtype)
    return ops.matmul(probs, v)  # (B, nh, Sq, d)


class FlashWindowAttention(nn.Cell):
    """Ascend only: FlashAttentionScore in band mode (sparse_mode 4, pre_tokens W-1, next_tokens 0).

    Band mode takes the compressed 2048x2048 upper-triangular mask (1 = discard), a constant here.
    Not runnable on CPU; selected by config.use_flash_attention (the plan renders it: on Atlas A2/A3
    only; unset, on Ascend chips other than the 910A, see model.flash_attention_enabled).
    """

    def __init__(self, config: Any):
        super().__init__()
        self.flash = FlashAttentionScore(
            head_num=config.num_heads,
            scale_value=1.0 / math.sqrt(config.head_dim),
            pre_tokens=config.sparse_local_size - 1,
            next_tokens=0,
            input_layout="BNSD",
            sparse_mode=4,
        )
        self.band_mask = Tensor(np.triu(np.ones((2048, 2048), np.uint8), k=1), mstype.uint8)
        self.compute_dtype = config.compute_type

    def construct(self, q, k, v):
        dtype = self.compute_dtype
        q, k, v = cast_to(q, dtype), cast_to(k, dtype), cast_to(v, dtype)
        _, _, _, out = self.flash(q, k, v, None, None, None, self.band_mask)
        return out  # (B, nh, S, d)

    def shard(self, parallel_config: Any) -> None:
        dp, mp = dp_mp(parallel_config)
        qkv = (dp, mp, 1, 1)  # heads split over mp
        self.flash.shard((qkv, qkv, qkv, (1, 1)))


class Attention(nn.Cell):
    """q/k/v/out projections with bias, RoPE on q and k, windowed causal attention."""

    def __init__(self, config: Any, use_flash: bool):
        super().__init__()
        hidden = config.hidden_size
        self.num_heads, self.head_dim = config.num_heads, config.head_dim
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.softmax_dtype = config.softmax_compute_type
        self.q_proj = Linear(hidden, hidden, config)
        self.k_proj = Linear(hidden, hidden, config)
        self.v_proj = Linear(hidden, hidden, config)
        self.out_proj = Linear(hidden, hidden, config)
        self.use_flash = use_flash
        self.flash = FlashWindowAttention(config) if use_flash else None
        self.reshape = P.Reshape()
        self.split_heads = P.Transpose()
        self.merge_heads = P.Transpose()

    def construct(self, x, cos, sin, mask):
        """x (B, S, H), cos/sin (S, d), mask bool (S, S) or None on the flash path -> (B, S, H)."""
        bsz, seq, hidden = x.shape
        q = apply_rope(self._heads(self.q_proj(x), bsz, seq), cos, sin)
        k = apply_rope(self._heads(self.k_proj(x), bsz, seq), cos, sin)
        v = self._heads(self.v_proj(x), bsz, seq)
        if self.use_flash:
            out = self.flash(q, k, v)
        else:
            out = windowed_attention(q, k, v, mask, self.scale, self.softmax_dtype)
        out = self.reshape(self.merge_heads(out, (0, 2, 1, 3)), (bsz, seq, hidden))
        return self.out_proj(out)

    def _heads(self, x, bsz, seq):
        x = self.reshape(x, (bsz, seq, self.num_heads, self.head_dim))
        return self.split_heads(x, (0, 2, 1, 3))  # (B, S, nh, d) -> (B, nh, S, d)

    def shard(self, parallel_config: Any) -> None:
        dp, mp = dp_mp(parallel_config)
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            proj.shard_column(dp, mp)  # (B*S, H) -> (B*S, H), heads split over mp
        self.split_heads.shard(((dp, 1, mp, 1),))  # (B, S, nh, d) -> (B, nh, S, d)
        self.merge_heads.shard(((dp, mp, 1, 1),))  # (B, nh, S, d) -> (B, S, nh, d)
        self.out_proj.shard_row(dp, mp)  # partial sums all-reduced over mp
        if self.use_flash:
            self.flash.shard(parallel_config)

    # ---- cached inference (iflytekspark.inference): the same math, split at the cache ----

    def project(self, x, cos, sin):
        """q, k, v (B, nh, S, d) of x (B, S, H), RoPE applied to q and k; cos/sin broadcast to (B, 1, S, d)."""
        bsz, seq, _ = x.shape
        q = apply_rope(self._heads(self.q_proj(x), bsz, seq), cos, sin)
        k = apply_rope(self._heads(self.k_proj(x), bsz, seq), cos, sin)
        return q, k, self._heads(self.v_proj(x), bsz, seq)

    def attend(self, q, k, v, mask):
        """out_proj of q (B, nh, Sq, d) attending over k, v (B, nh, Sk, d); mask bool, broadcasts -> (B, Sq, H)."""
        bsz, _, seq, _ = q.shape
        out = windowed_attention(q, k, v, mask, self.scale, self.softmax_dtype)
        out = self.reshape(self.merge_heads(out, (0, 2, 1, 3)), (bsz, seq, self.num_heads * self.head_dim))
        return self.out_proj(out)
