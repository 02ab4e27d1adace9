"""Building blocks with checkpoint-compatible parameter names: Linear, LayerNorm, embedding, GeGLU MLP.

Every cell takes the whole config; sharding lives in one ``shard(parallel_config)`` per cell and only
matters in (semi-)auto parallel mode on Ascend (data parallel and stand-alone ignore strategies).
"""

from __future__ import annotations

from typing import Any, Tuple

import mindspore.common.dtype as mstype
from mindspore import Parameter, nn, ops
from mindspore.common.initializer import XavierNormal, initializer
from mindspore.ops import operations as P

__all__ = ["Linear", "LayerNorm", "VocabEmbedding", "Embedding", "MLP", "dp_mp", "cast_to"]


def cast_to(x, dtype):
    """x in ``dtype``; x itself when it already has it (a same-dtype Cast still copies the tensor).

    ``x.dtype`` is static, so graph mode resolves the branch at compile time and emits no Cast op.
    """
    if x.dtype == dtype:
        return x
    return ops.cast(x, dtype)


def dp_mp(parallel_config: Any) -> Tuple[int, int]:
    """(data_parallel, model_parallel) of a TransformerOpParallelConfig, MindFormerConfig or dict."""
    if isinstance(parallel_config, dict):
        return int(parallel_config.get("data_parallel", 1)), int(parallel_config.get("model_parallel", 1))
    dp = getattr(parallel_config, "data_parallel", 1) or 1
    mp = getattr(parallel_config, "model_parallel", 1) or 1
    return int(dp), int(mp)


class Linear(nn.Dense):
    """y = x W^T + b with W stored [out, in] (checkpoint layout), computed in ``compute_dtype``.

    A subclass of ``nn.Dense`` so that mindpet / MindFormers LoRA can replace it in place.
    """

    def __init__(self, in_channels: int, out_channels: int, config: Any):
        super().__init__(
            in_channels,
            out_channels,
            weight_init=XavierNormal(),
            bias_init="zeros",
            has_bias=True,
            dtype=config.param_init_type,
        )
        self.compute_dtype = config.compute_type
        self.cast = P.Cast()
        self.cast_params = config.param_init_type != config.compute_type  # fixed: no Cast op when equal

    def construct(self, x):
        shape = self.shape_op(x)
        x = self.reshape(cast_to(x, self.compute_dtype), (-1, shape[-1]))
        weight, bias = self.weight, self.bias
        if self.cast_params:
            weight, bias = self.cast(weight, self.compute_dtype), self.cast(bias, self.compute_dtype)
        x = self.bias_add(self.matmul(x, weight), bias)
        return self.reshape(x, shape[:-1] + (self.out_channels,))

    def shard(self, strategy_matmul: tuple, strategy_bias: tuple) -> None:
        self.matmul.shard(strategy_matmul)
        self.bias_add.shard(strategy_bias)

    def shard_column(self, dp: int, mp: int) -> None:
        """Output features split over mp: (dp, 1) x (mp, 1)^T -> (dp, mp)."""
        self.shard(((dp, 1), (mp, 1)), ((dp, mp), (mp,)))

    def shard_row(self, dp: int, mp: int) -> None:
        """Input features split over mp, partial sums all-reduced: (dp, mp) x (1, mp)^T -> (dp, 1)."""
        self.shard(((dp, mp), (1, mp)), ((dp, 1), (1,)))


class LayerNorm(nn.Cell):
    """LayerNorm with gamma and beta in float32, computed in layernorm_compute_type, output in input dtype."""

    def __init__(self, config: Any):
        super().__init__()
        hidden = config.hidden_size
        self.gamma = Parameter(initializer("ones", (hidden,), mstype.float32))
        self.beta = Parameter(initializer("zeros", (hidden,), mstype.float32))
        self.compute_dtype = config.layernorm_compute_type
        self.norm = P.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=config.layernorm_epsilon)
        self.cast = P.Cast()
        self.cast_params = self.compute_dtype != mstype.float32  # gamma, beta are float32

    def construct(self, x):
        gamma, beta = self.gamma, self.beta
        if self.cast_params:
            gamma, beta = self.cast(gamma, self.compute_dtype), self.cast(beta, self.compute_dtype)
        y, _, _ = self.norm(cast_to(x, self.compute_dtype), gamma, beta)
        return cast_to(y, x.dtype)

    def shard(self, parallel_config: Any) -> None:
        dp, _ = dp_mp(parallel_config)
        self.norm.shard(((dp, 1, 1), (1,), (1,)))  # (B, S, H): batch split, H whole


class VocabEmbedding(nn.Cell):
    """Token lookup in ``embedding_table`` [vocab, hidden]; the same table is the tied LM head."""

    def __init__(self, config: Any):
        super().__init__()
        shape = (config.vocab_size, config.hidden_size)
        self.embedding_table = Parameter(initializer(XavierNormal(), shape, config.embedding_init_type))
        self.gather = P.Gather()
        self.cast = P.Cast()
        self.compute_dtype = config.compute_type
        self.cast_out = config.embedding_init_type != config.compute_type  # fixed: no Cast op when equal

    def construct(self, tokens):
        x = self.gather(self.embedding_table, tokens, 0)  # (B, S, H)
        return self.cast(x, self.compute_dtype) if self.cast_out else x

    def shard(self, parallel_config: Any) -> None:
        dp, mp = dp_mp(parallel_config)
        if getattr(parallel_config, "vocab_emb_dp", True) or mp == 1:
            self.gather.shard(((1, 1), (dp, 1)))  # table replicated, tokens split by batch
        else:
            self.gather.shard(((mp, 1), (dp, 1)))  # vocab rows split over mp


class Embedding(nn.Cell):
    """The ``embedding`` scope of the checkpoint: word embeddings only (no positions, no scaling)."""

    def __init__(self, config: Any):
        super().__init__()
        self.word_embeddings = VocabEmbedding(config)

    def construct(self, tokens):
        return self.word_embeddings(tokens)

    def shard(self, parallel_config: Any) -> None:
        self.word_embeddings.shard(parallel_config)


class MLP(nn.Cell):
    """GeGLU: fc2(gelu_tanh(fc0(x)) * fc1(x)), inner width ffn_hidden_size / 2."""

    def __init__(self, config: Any):
        super().__init__()
        hidden, inner = config.hidden_size, config.ffn_hidden_size // 2
        self.fc0 = Linear(hidden, inner, config)  # gate
        self.fc1 = Linear(hidden, inner, config)  # value
        self.fc2 = Linear(inner, hidden, config)
        # P.GeLU is the tanh approximation 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))), as the spec needs.
        self.gelu = P.GeLU()
        self.mul = P.Mul()

    def construct(self, x):
        return self.fc2(self.mul(self.gelu(self.fc0(x)), self.fc1(x)))

    def shard(self, parallel_config: Any) -> None:
        dp, mp = dp_mp(parallel_config)
        self.fc0.shard_column(dp, mp)  # (B*S, H) -> (B*S, inner), inner split over mp
        self.fc1.shard_column(dp, mp)
        self.gelu.shard(((dp, 1, mp),))  # (B, S, inner): inner split over mp
        self.mul.shard(((dp, 1, mp), (dp, 1, mp)))
        self.fc2.shard_row(dp, mp)  # (B*S, inner) -> (B*S, H), partial sums all-reduced over mp
