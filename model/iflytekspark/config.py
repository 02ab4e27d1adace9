"""IFlytekSparkConfig: the architecture and numerics of the model, as a MindFormers config (docs/model.md §1).

Generation settings live in :class:`GenerationConfig`; parallel settings in ``parallel_config``
(a MindFormers ``TransformerOpParallelConfig``). Fields the reference YAMLs carry but nothing reads
(``REFERENCE_ONLY_FIELDS``) are stored so those YAMLs load, and otherwise ignored.
"""

from __future__ import annotations

from typing import Any, Optional

from mindformers.models.configuration_utils import PretrainedConfig
from mindformers.models.utils import convert_mstype
from mindformers.modules.transformer.transformer import (
    TransformerOpParallelConfig,
    default_transformer_config,
)
from mindformers.tools.register import MindFormerModuleType, MindFormerRegister

from .errors import ConfigError
from .generation_config import GenerationConfig
from .presets import PRESETS
from .stages import StageError, stage_layer_counts

__all__ = ["IFlytekSparkConfig", "GenerationConfig", "REFERENCE_ONLY_FIELDS", "LOSS_MASK_ALIGNMENTS"]

# Stored by the reference, read by nothing (docs/model.md §1). Accepted and kept as plain attributes.
REFERENCE_ONLY_FIELDS = frozenset(
    {
        "hidden_act",
        "eod_reset",
        "is_reward_model",
        "use_moe",
        "expert_num",
        "enable_offload",
        "ignore_token_id",
        "bias_dropout_fusion",
    }
)

# "labels": mask of the predicted token (ours, default); "reference": mask of the input position.
LOSS_MASK_ALIGNMENTS = ("labels", "reference")


@MindFormerRegister.register(MindFormerModuleType.CONFIG)
class IFlytekSparkConfig(PretrainedConfig):
    """Configuration of IFlytekSparkForCausalLM.

    Sizes: vocab_size, hidden_size, ffn_hidden_size (MLP inner width is half of it), num_layers,
    num_heads (head_dim = hidden_size / num_heads), seq_length (training rows hold seq_length + 1 ids),
    sparse_local_size (attention window W: query i sees keys i-W+1..i), rope_theta.
    Numerics: compute_type (linears, attention), param_init_type (linear weights; default compute_type),
    layernorm_compute_type, softmax_compute_type, embedding_init_type (the embedding table).
    Behaviour: use_flash_attention (None = on Ascend chips that have FlashAttentionScore, not the
    910A; the plan always sets it), loss_mask_alignment ("labels" | "reference"),
    use_past (incremental decoding, inference only), parallel_config (dp / mp / pipeline_stage ...),
    offset (layers per pipeline stage beyond num_layers // pp: one int or one per stage, as
    MindFormers' LLaMA takes it; see stages.py).
    """

    model_type = "iflytekspark"

    def __init__(
        self,
        batch_size: int = 1,
        seq_length: int = 32768,
        vocab_size: int = 60000,
        hidden_size: int = 5120,
        ffn_hidden_size: int = 28672,
        num_layers: int = 40,
        num_heads: int = 40,
        sparse_local_size: int = 8192,
        layernorm_epsilon: float = 1e-5,
        rope_theta: float = 1e6,
        pad_token_id: int = 0,
        bos_token_id: int = 1,
        eos_token_id: int = 5,
        compute_type: str = "float16",
        param_init_type: Optional[str] = None,
        layernorm_compute_type: str = "float32",
        softmax_compute_type: str = "float32",
        embedding_init_type: str = "float32",
        use_flash_attention: Optional[bool] = None,
        loss_mask_alignment: str = "labels",
        use_past: bool = False,
        offset: Any = 0,
        parallel_config: Any = default_transformer_config,
        **kwargs: Any,
    ):
        super().__init__(
            pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs
        )
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.ffn_hidden_size = ffn_hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.sparse_local_size = sparse_local_size
        self.layernorm_epsilon = layernorm_epsilon
        self.rope_theta = rope_theta
        self.compute_type = convert_mstype(compute_type)
        self.param_init_type = convert_mstype(param_init_type or compute_type)
        self.layernorm_compute_type = convert_mstype(layernorm_compute_type)
        self.softmax_compute_type = convert_mstype(softmax_compute_type)
        self.embedding_init_type = convert_mstype(embedding_init_type)
        self.use_flash_attention = use_flash_attention
        self.loss_mask_alignment = loss_mask_alignment
        self.use_past = use_past
        self.offset = list(offset) if isinstance(offset, (list, tuple)) else offset
        if isinstance(parallel_config, dict):
            parallel_config = TransformerOpParallelConfig(**parallel_config)
        self.parallel_config = parallel_config
        self._check()

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def mlp_inner_size(self) -> int:
        return self.ffn_hidden_size // 2

    @classmethod
    def preset(cls, name: str = "13b", **overrides: Any) -> IFlytekSparkConfig:
        """The released sizes (``PRESETS``), with any field overridden."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; known: {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def generation_config(self) -> GenerationConfig:
        """Sampling settings found on this config (a reference YAML may put them here), else defaults."""
        return GenerationConfig.from_mapping(self.__dict__)

    def _check(self) -> None:
        problems = []
        if self.hidden_size % self.num_heads:
            problems.append(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        elif self.head_dim % 2:
            problems.append(f"head_dim {self.head_dim} must be even for rotate-half RoPE")
        if self.ffn_hidden_size % 2:
            problems.append(f"ffn_hidden_size {self.ffn_hidden_size} must be even (the MLP is gated)")
        if self.sparse_local_size < 1:
            problems.append(f"sparse_local_size {self.sparse_local_size} must be >= 1")
        if self.loss_mask_alignment not in LOSS_MASK_ALIGNMENTS:
            problems.append(
                f"loss_mask_alignment {self.loss_mask_alignment!r} must be one of {LOSS_MASK_ALIGNMENTS}"
            )
        pp = int(getattr(self.parallel_config, "pipeline_stage", 1) or 1)
        try:
            stage_layer_counts(self.num_layers, pp, self.offset)
        except StageError as exc:
            problems.append(f"pipeline_stage {pp}: {exc}")
        if problems:
            raise ConfigError("IFlytekSparkConfig: " + "; ".join(problems))
