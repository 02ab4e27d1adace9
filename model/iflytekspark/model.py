"""IFlytekSparkForCausalLM: pre-LN decoder stack, tied head, masked cross-entropy (docs/model.md §2, §4).

Parameter names follow the released checkpoints (docs/model.md §3):
``transformer.embedding.word_embeddings.embedding_table``, ``transformer.transformer.layers.{i}.*``,
``transformer.transformer.layernorm.*``. The head has no weight of its own (logits = h @ E^T).
"""

from __future__ import annotations

from typing import Any

import mindspore as ms
import mindspore.common.dtype as mstype
from mindformers.models.modeling_utils import PreTrainedModel
from mindformers.tools.register import MindFormerModuleType, MindFormerRegister
from mindspore import Tensor, nn, ops
from mindspore.ops import operations as P

from .attention import Attention, rope_inv_freq, rope_tables, window_mask
from .config import IFlytekSparkConfig
from .errors import ConfigError
from .layers import MLP, Embedding, LayerNorm, cast_to, dp_mp
from .stages import layer_stages

__all__ = ["DecoderLayer", "IFlytekSparkModel", "IFlytekSparkForCausalLM", "MaskedCrossEntropy", "TiedHead"]


# Ascend SoC versions without FlashAttentionScore: the 910A (Atlas 800) reports "ascend910" (the
# A2's is "ascend910b", the A3's "ascend910_93"). The same names MindFormers' own is_910a() tests
# (mindformers/version_control.py); the operator exists on Atlas A2/A3 training products only (CANN
# operator list, FlashAttentionScore "产品支持情况").
NO_FLASH_SOCS = ("910a", "ascend910")


def ascend_soc_version() -> str:
    """The SoC version MindSpore's context reports ("ascend910b", ...; "" when unavailable)."""
    try:
        from mindspore._c_expression import MSContext

        return str(MSContext.get_instance().get_ascend_soc_version()).lower()
    except Exception:  # an older MindSpore or no Ascend runtime: unknown
        return ""


def flash_attention_enabled(config: Any) -> bool:
    """config.use_flash_attention (the plan always renders it), or when unset (None): on Ascend chips
    that have FlashAttentionScore, never on the 910A. Asking for it on a 910A is a ConfigError."""
    wanted = config.use_flash_attention
    if wanted is not None and not wanted:
        return False
    if ms.get_context("device_target") != "Ascend":
        return bool(wanted)  # explicit True off Ascend builds the cells (wiring tests); None: dense
    soc = ascend_soc_version()
    if soc in NO_FLASH_SOCS:
        if wanted:
            raise ConfigError(
                f"use_flash_attention is true, but this Ascend SoC ({soc}, Atlas 800 / 910A) has no "
                "FlashAttentionScore (Atlas A2/A3 only): set use_flash_attention: false"
            )
        return False
    return True


class DecoderLayer(nn.Cell):
    """h = x + attn(LN1(x)); y = h + mlp(LN2(h))."""

    def __init__(self, config: Any, use_flash: bool):
        super().__init__()
        self.layer_norm = LayerNorm(config)
        self.attention = Attention(config, use_flash)
        self.final_layer_norm = LayerNorm(config)
        self.mlp = MLP(config)

    def construct(self, x, cos, sin, mask):
        h = x + self.attention(self.layer_norm(x), cos, sin, mask)
        return h + self.mlp(self.final_layer_norm(h))

    def shard(self, parallel_config: Any) -> None:
        for cell in (self.layer_norm, self.attention, self.final_layer_norm, self.mlp):
            cell.shard(parallel_config)


class Transformer(nn.Cell):
    """The ``transformer.transformer`` scope: the layers and the final LayerNorm."""

    def __init__(self, config: Any, use_flash: bool):
        super().__init__()
        self.layers = nn.CellList([DecoderLayer(config, use_flash) for _ in range(config.num_layers)])
        self.layernorm = LayerNorm(config)

    def construct(self, x, cos, sin, mask):
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.layernorm(x)

    def shard(self, parallel_config: Any) -> None:
        for layer in self.layers:
            layer.shard(parallel_config)
        self.layernorm.shard(parallel_config)


class IFlytekSparkModel(nn.Cell):
    """Token ids (B, S) -> final hidden states (B, S, H). RoPE tables and the window mask are built
    once per forward from the positions and passed to every layer."""

    def __init__(self, config: Any):
        super().__init__()
        self.use_flash = flash_attention_enabled(config)
        self.window = config.sparse_local_size
        self.inv_freq = rope_inv_freq(config.head_dim, config.rope_theta)  # a constant, not a Parameter
        self.embedding = Embedding(config)
        self.transformer = Transformer(config, self.use_flash)
        recompute = getattr(getattr(config.parallel_config, "recompute", None), "recompute", False)
        if recompute is True:
            for layer in self.transformer.layers:
                layer.recompute()
        self.set_pipeline(config)

    def set_pipeline(self, config: Any) -> None:
        """Stages and gradient fusion groups as MindFormers' LLaMA sets them (docs/model.md §9): the
        embedding on stage 0, layer i on ``layer_stages(...)[i]`` (num_layers // pp each, plus the
        ``offset`` list), the final LayerNorm on the last stage. With pp > 1 every cell fuses its
        gradients in group 2; otherwise layers are spread over ``gradient_aggregation_group`` groups."""
        parallel = config.parallel_config
        pp = int(getattr(parallel, "pipeline_stage", 1) or 1)
        stages = layer_stages(config.num_layers, pp, config.offset)
        group = int(getattr(parallel, "gradient_aggregation_group", 4) or 4)
        dis = max(int((config.num_layers + 1) / group), 1)
        for i, layer in enumerate(self.transformer.layers):
            layer.pipeline_stage = stages[i]
            layer.set_comm_fusion(2 if pp > 1 else int(i / dis) + 1)
        self.embedding.pipeline_stage = 0
        self.transformer.layernorm.pipeline_stage = pp - 1
        for cell in (self.embedding, self.transformer.layernorm):
            cell.set_comm_fusion(2 if pp > 1 else group)

    def construct(self, tokens):
        positions = ops.arange(0, tokens.shape[1], dtype=mstype.int32)
        cos, sin = rope_tables(positions, self.inv_freq)  # (S, d) each
        mask = None if self.use_flash else window_mask(positions, positions, self.window)  # (S, S)
        return self.transformer(self.embedding(tokens), cos, sin, mask)

    def shard(self, parallel_config: Any) -> None:
        self.embedding.shard(parallel_config)
        self.transformer.shard(parallel_config)


class TiedHead(nn.Cell):
    """logits = h @ E^T in float32, E the embedding table passed in (no weight of its own, docs/model.md §2).

    A cell of its own so that it sits on the last pipeline stage while the table's lookup sits on the
    first: the table is then a parameter shared by two stages, as MindFormers' LLaMA shares its tied
    ``lm_head.weight`` with ``tok_embeddings``. Vocabulary split over mp unless vocab_emb_dp (as
    LLaMA's lm_head)."""

    def __init__(self, config: Any):
        super().__init__()
        self.compute_dtype = config.compute_type
        self.matmul = P.MatMul(transpose_b=True)

    def construct(self, hidden, table):
        table = cast_to(table, self.compute_dtype)
        return cast_to(self.matmul(hidden, table), mstype.float32)  # (B*S, V)

    def shard(self, parallel_config: Any) -> None:
        dp, mp = dp_mp(parallel_config)
        vocab_split = 1 if getattr(parallel_config, "vocab_emb_dp", True) else mp
        self.matmul.shard(((dp, 1), (vocab_split, 1)))  # (B*S, H) x (V, H)^T -> (B*S, V)


class MaskedCrossEntropy(nn.Cell):
    """sum(nll * m) / (sum(m) + 1e-5), computed in float32; logits (N, V), labels (N,), mask (N,)."""

    def __init__(self):
        super().__init__()
        self.max = P.ReduceMax(keep_dims=True)
        self.sub = P.Sub()
        self.exp = P.Exp()
        self.sum_exp = P.ReduceSum(keep_dims=False)
        self.log = P.Log()
        self.onehot = P.OneHot()
        self.on_value, self.off_value = Tensor(1.0, mstype.float32), Tensor(0.0, mstype.float32)
        self.mul = P.Mul()
        self.sum_label = P.ReduceSum(keep_dims=False)

    def construct(self, logits, labels, mask):
        logits = cast_to(logits, mstype.float32)
        shifted = self.sub(logits, ops.stop_gradient(self.max(logits, -1)))
        log_norm = self.log(self.sum_exp(self.exp(shifted), -1))  # (N,)
        onehot = self.onehot(labels, logits.shape[-1], self.on_value, self.off_value)  # (N, V)
        nll = log_norm - self.sum_label(self.mul(shifted, onehot), -1)  # (N,)
        mask = ops.cast(mask, mstype.float32)
        return ops.reduce_sum(nll * mask) / (ops.reduce_sum(mask) + 1e-5)

    def shard(self, parallel_config: Any) -> None:
        dp, mp = dp_mp(parallel_config)
        self.max.shard(((dp, mp),))  # (N, V): vocab split over mp, reductions all-reduce over mp
        self.sub.shard(((dp, mp), (dp, 1)))
        self.exp.shard(((dp, mp),))
        self.sum_exp.shard(((dp, mp),))
        self.log.shard(((dp,),))
        self.onehot.shard(((dp, mp), (), ()))
        self.mul.shard(((dp, mp), (dp, mp)))
        self.sum_label.shard(((dp, mp),))


@MindFormerRegister.register(MindFormerModuleType.MODELS)
class IFlytekSparkForCausalLM(PreTrainedModel):
    """The causal LM MindFormers builds from ``model.arch.type: IFlytekSparkForCausalLM``.

    ``construct(input_ids, labels=None, loss_mask=None)``:
    - training (``set_train(True)``): input_ids (B, S+1); tokens = ids[:, :-1], labels = ids[:, 1:]
      (or ``labels[:, 1:]`` when labels (B, S+1) are given); returns the scalar float32 loss. The mask
      is loss_mask[:, 1:] ("labels" alignment) or loss_mask[:, :-1] ("reference"); without loss_mask
      it is labels != pad_token_id (resp. tokens != pad_token_id): all ones for unpadded pretrain rows.
    - otherwise: float32 logits (B, S, V) of all of input_ids; with ``metric_outputs`` set, the triple
      (logits, input_ids, input_mask) that MindFormers' PerplexityMetric expects.
    """

    config_class = IFlytekSparkConfig
    base_model_prefix = "transformer"

    def __init__(self, config: IFlytekSparkConfig):
        super().__init__(config, auto_prefix=True)
        self.vocab_size = config.vocab_size
        self.pad_token_id = config.pad_token_id
        self.reference_alignment = config.loss_mask_alignment == "reference"
        self.compute_dtype = config.compute_type
        self.metric_outputs = False
        self.transformer = IFlytekSparkModel(config)
        self.head = TiedHead(config)
        self.loss = MaskedCrossEntropy()
        pp = int(getattr(config.parallel_config, "pipeline_stage", 1) or 1)
        self.head.pipeline_stage = pp - 1  # the tied head and the loss on the last stage (LLaMA: lm_head)
        self.loss.pipeline_stage = pp - 1
        self.shard(config.parallel_config)
        self.load_checkpoint(config)

    def construct(self, input_ids, labels=None, loss_mask=None):
        if not self.training:
            logits = self.logits(input_ids)
            if self.metric_outputs:
                mask = self._pad_mask(input_ids) if loss_mask is None else loss_mask
                return logits, input_ids, ops.cast(mask, mstype.float32)
            return logits
        tokens = input_ids[:, :-1]
        labels = input_ids[:, 1:] if labels is None else labels[:, 1:]
        if loss_mask is None:
            mask = self._pad_mask(tokens) if self.reference_alignment else self._pad_mask(labels)
        else:
            mask = loss_mask[:, :-1] if self.reference_alignment else loss_mask[:, 1:]
        logits = self._flat_logits(tokens)
        return self.loss(logits, ops.reshape(labels, (-1,)), ops.reshape(mask, (-1,)))

    def logits(self, tokens):
        """Float32 logits (B, S, V) of token ids (B, S)."""
        bsz, seq = tokens.shape
        return ops.reshape(self._flat_logits(tokens), (bsz, seq, self.vocab_size))

    def _flat_logits(self, tokens):
        hidden = self.transformer(tokens)  # (B, S, H)
        hidden = ops.reshape(hidden, (-1, hidden.shape[-1]))
        return self.head(hidden, self.transformer.embedding.word_embeddings.embedding_table)  # (B*S, V)

    def _pad_mask(self, ids):
        return ops.cast(ids != self.pad_token_id, mstype.float32)

    def shard(self, parallel_config: Any) -> None:
        self.transformer.shard(parallel_config)
        self.head.shard(parallel_config)
        self.loss.shard(parallel_config)

    def set_metric_outputs(self, enabled: bool = True) -> None:
        """Make eval mode return (logits, input_ids, input_mask) for MindFormers' PerplexityMetric.
        Set it before the first eval-mode call: graph mode compiles the choice in."""
        self.metric_outputs = enabled

    def load_checkpoint(self, config: Any) -> None:
        """Load ``config.checkpoint_name_or_path`` strictly (unknown keys reported, missing keys fatal)."""
        path = getattr(config, "checkpoint_name_or_path", None)
        if path:
            from .checkpoint import load_weights

            load_weights(self, path, strict=True)

    def get_model_parameters(self) -> set:
        return set(self.trainable_params())


def layer_with_past(layer: DecoderLayer, x, cos, sin, mask, past_k=None, past_v=None):
    """One decoder layer for cached inference: x (B, S, H) attends over past_k/past_v (B, nh, P, d)
    (if given) followed by its own keys; mask bool broadcasts to (B, nh, S, P + S).

    Returns (y (B, S, H), keys, values): what was attended over, (B, nh, P + S, d), x's rotated keys and
    values last. The same math as ``DecoderLayer.construct`` (tests/inference check the equality).
    """
    q, k, v = layer.attention.project(layer.layer_norm(x), cos, sin)
    keys = k if past_k is None else ops.concat((past_k, k), 2)
    values = v if past_v is None else ops.concat((past_v, v), 2)
    h = x + layer.attention.attend(q, keys, values, mask)
    return h + layer.mlp(layer.final_layer_norm(h)), keys, values
