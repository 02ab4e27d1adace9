"""Per-device memory estimate of a job, and the smallest layout that fits when it does not.

Sizes are in GB of 2**30 bytes (what MindSpore's ``max_device_memory: "58GB"`` means). Notation:
b micro-batch size, s seq_length, h hidden, f the MLP inner width (ffn_hidden_size / 2), a heads,
V vocab, L layers, t = mp, e bytes per element of the compute dtype, w the KV window.

- Per pipeline stage, the busiest one counting (``iflytekspark.stages``, as the model assigns them):
  stage k holds its L_k layers (L // pp plus ``offset[k]``); the first also the embedding table, the
  last the final LayerNorm, the logits and, because the head is tied, the embedding table again (a
  parameter shared by two stages is held, with its gradient and optimizer state, by both). With pp 1
  the one stage holds everything. The estimate reports the stage with the largest total.
- Weights: linear weights and the q/k/v and fc0/fc1 biases are split over mp; out_proj/fc2 biases
  and LayerNorms are replicated; the embedding table is split over mp unless vocab_emb_dp. Matrices are stored in the compute dtype
  (the reference keeps no fp32 master copy), LayerNorms in fp32, the embedding in fp32 when
  computing in bfloat16 (docs/model.md §1).
- Gradients: the trainable parameters again, in their own dtype (LoRA: only the adapters,
  r (in + out) per targeted linear).
- Optimizer state: AdamW m and v in float32 (iflytekspark's SparkAdamW), 8 bytes per trainable
  parameter, divided by dp when optimizer_shard (MindSpore's parallel optimizer).
- Activations kept for backward, per layer and micro batch (Korthikanti et al. 2022, adapted to the
  gated MLP and no dropout), counting only what model/iflytekspark does: it implements neither
  sequence parallelism nor recompute slicing (``use_seq_parallel`` and ``recompute_slice_activation``
  are read by nothing in the model), so LN inputs/outputs are replicated over mp whatever the plan
  says. With flash attention (FlashAttentionScore, A2/A3 training products only):
      e * (4sbh + 4sbh / t + 4sbf / t) + 8sba / t
  i.e. LN1/LN2 inputs and outputs, q, k, v and the attention output, fc0, GELU, fc1 outputs and their
  product, plus fp32 softmax statistics. Without it (Atlas 800, 800I A2, CPU) the dense path of
  attention.py materialises the whole S x S score matrix (the window only masks it): fp32 scores, fp32
  probabilities and the probabilities in the compute dtype, (8 + e) a s^2 b / t bytes more.
  Without recompute all L_k layers are kept; with recompute (the model's ``layer.recompute()``,
  whole layers) only each layer's input (e*sbh, not sliced) plus one layer in full while it is
  recomputed. Stage k holds min(micro_batch_num, pp - k) micro batches in flight (1F1B); b is the
  micro batch times ``micro_batch_interleave_num`` (the interleaved halves run in one graph).
- Logits on the last stage: s b V / t elements, in the compute dtype plus an fp32 copy and its fp32
  gradient (e + 8 bytes).
- Inference (predict, predict_lora, export): the cached path (iflytekspark.inference) always attends
  densely, over prompts of at most ``infer_length`` tokens (the plan's predict_length: prompt plus
  answer; default seq_length): weights, the KV cache 2 L b min(n, w) h / t * e (n = infer_length),
  one dense layer working set at n tokens and the last-token logits. Eval (perplexity): weights, one
  layer's working set over whole rows (flash or dense as above) and the logits of whole rows with their
  fp32 softmax (s b V / t elements, e + 4 bytes), no cache.
- Overhead: 1 GB of runtime workspace and communication buffers per device.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from iflytekspark.stages import stage_layer_counts

from orchestrator.errors import PlanError
from orchestrator.inventory.profiles import HardwareProfile, Layout
from orchestrator.plan.model_presets import ModelPreset
from orchestrator.plan.strategy import Strategy, layout_problems

GB = float(2**30)
OVERHEAD_GB = 1.0
LORA_RANK = 3
_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-device GB of each part; ``total_gb`` uses the strategy's recompute setting."""

    weights_gb: float
    gradients_gb: float
    optimizer_gb: float
    activations_gb: float
    activations_no_recompute_gb: float
    activations_recompute_gb: float
    logits_gb: float
    kv_cache_gb: float
    overhead_gb: float
    total_gb: float
    budget_gb: float
    stage: int = 0  # the pipeline stage these figures are of (the busiest)
    stage_layers: tuple[int, ...] = ()  # decoder layers on each stage

    @property
    def fits(self) -> bool:
        return self.total_gb <= self.budget_gb

    @property
    def headroom_gb(self) -> float:
        return round(self.budget_gb - self.total_gb, 3)


@dataclass(frozen=True)
class _Stage:
    """What one pipeline stage holds: its decoder layers, the embedding table, the final LayerNorm."""

    index: int
    layers: int
    embedding: bool
    final: bool  # final LayerNorm, tied head and logits


def stages_of(m: ModelPreset, st: Strategy) -> list[_Stage]:
    counts = stage_layer_counts(m.num_layers, st.pp, list(st.offset) or None)
    last = st.pp - 1
    return [_Stage(k, n, k in (0, last), k == last) for k, n in enumerate(counts)]


def _weights_bytes(m: ModelPreset, st: Strategy, stage: _Stage) -> float:
    h, f, t, e = m.hidden_size, m.ffn_inner, st.mp, _BYTES[st.compute_dtype]
    split = 4 * h * h + 3 * h + 3 * h * f + 2 * f  # matrices plus q/k/v and fc0/fc1 biases
    layer = e * (split / t + 2 * h) + 4 * 4 * h  # out_proj/fc2 biases replicated, LayerNorms fp32
    emb_bytes = 4 if st.compute_dtype in ("bfloat16", "float32") else e
    emb = emb_bytes * m.vocab_size * h / (1 if st.vocab_emb_dp else t)
    return layer * stage.layers + emb * stage.embedding + 4 * 2 * h * stage.final


def _trainable_params(m: ModelPreset, st: Strategy, stage: _Stage) -> float:
    """Trainable parameters on one device of ``stage`` (all of them, or only the LoRA adapters)."""
    h, f = m.hidden_size, m.ffn_inner
    if st.task == "lora":
        return LORA_RANK * (4 * 2 * h + 2 * (h + f) + (f + h)) * stage.layers / st.mp
    layer = (4 * h * h + 3 * h + 3 * h * f + 2 * f) / st.mp + 6 * h
    emb = m.vocab_size * h / (1 if st.vocab_emb_dp else st.mp)
    return layer * stage.layers + emb * stage.embedding + 2 * h * stage.final


def _layer_activation_bytes(m: ModelPreset, st: Strategy, flash: bool, seq: Optional[int] = None) -> float:
    b, h, f, a, t = (
        st.batch_size * st.micro_batch_interleave_num,
        m.hidden_size,
        m.ffn_inner,
        m.num_heads,
        st.mp,
    )
    s = seq or m.seq_length
    e = _BYTES[st.compute_dtype]
    out = e * (4 * s * b * h + 4 * s * b * h / t + 4 * s * b * f / t) + 8 * s * b * a / t
    if not flash:
        out += (8 + e) * a * s * s * b / t
    return out


def estimate_memory(
    m: ModelPreset, st: Strategy, flash_attention: bool = True, infer_length: Optional[int] = None
) -> MemoryEstimate:
    """The per-device estimate of ``st`` for model ``m`` on its busiest pipeline stage (formulas in the
    module docstring)."""
    stages = stages_of(m, st)
    best = max((_estimate_stage(m, st, k, flash_attention, infer_length) for k in stages), key=_total)
    return replace(best, stage_layers=tuple(k.layers for k in stages))


def _total(est: MemoryEstimate) -> tuple[float, int]:
    return est.total_gb, -est.stage  # the earliest stage among equals


def _estimate_stage(
    m: ModelPreset, st: Strategy, stage: _Stage, flash_attention: bool, infer_length: Optional[int]
) -> MemoryEstimate:
    e = _BYTES[st.compute_dtype]
    b, s = st.batch_size * st.micro_batch_interleave_num, m.seq_length
    weights = _weights_bytes(m, st, stage)
    layer = _layer_activation_bytes(m, st, flash_attention)
    if st.training:
        trainable = _trainable_params(m, st, stage)
        grads = weights if st.task != "lora" else trainable * e
        optim = 8 * trainable / (st.dp if st.optimizer_shard else 1)
        in_flight = min(st.micro_batch_num, st.pp - stage.index)
        no_rc = in_flight * stage.layers * layer
        rc = in_flight * stage.layers * e * s * b * m.hidden_size + layer
        acts = rc if st.recompute else no_rc
        logits = s * b * m.vocab_size / st.mp * (e + 8) * stage.final
        kv = 0.0
    elif st.task == "eval":  # one forward pass over whole rows for the loss: full logits, no cache
        grads = optim = kv = 0.0
        no_rc = rc = acts = layer
        logits = s * b * m.vocab_size / st.mp * (e + 4)
    else:  # the cached inference path: dense attention over at most infer_length tokens
        n = min(infer_length or s, s)
        grads = optim = 0.0
        no_rc = rc = acts = _layer_activation_bytes(m, st, False, n)
        logits = b * m.vocab_size * 4
        kv = 2 * m.num_layers * b * min(n, m.sparse_local_size) * m.hidden_size / st.mp * e
    parts = [weights, grads, optim, acts, logits, kv]
    total = sum(parts) / GB + OVERHEAD_GB

    def gb(x: float) -> float:
        return round(x / GB, 3)

    return MemoryEstimate(
        weights_gb=gb(weights),
        gradients_gb=gb(grads),
        optimizer_gb=gb(optim),
        activations_gb=gb(acts),
        activations_no_recompute_gb=gb(no_rc),
        activations_recompute_gb=gb(rc),
        logits_gb=gb(logits),
        kv_cache_gb=gb(kv),
        overhead_gb=OVERHEAD_GB,
        total_gb=round(total, 3),
        budget_gb=st.max_device_memory_gb,
        stage=stage.index,
    )


def _divisors(n: int, limit: int) -> list[int]:
    return [d for d in range(1, min(n, limit) + 1) if n % d == 0]


def _fitting(
    m: ModelPreset,
    st: Strategy,
    profile: HardwareProfile,
    world: int,
    flash: bool,
    infer_length: Optional[int] = None,
) -> Optional[Strategy]:
    """The fitting layout of exactly ``world`` devices with the least mp*pp, or None."""
    mps = _divisors(world, profile.devices_per_node if profile.accelerator else 1)
    pps = _divisors(m.num_layers, world) if st.training and profile.accelerator else [1]
    for mp, pp in sorted(((mp, pp) for mp in mps for pp in pps), key=lambda x: (x[0] * x[1], x[1])):
        offset = st.offset if pp == st.pp else ()
        if world % (mp * pp) or layout_problems(
            Layout(world // (mp * pp), mp, pp), m, profile, world, offset
        ):
            continue
        cand = replace(
            st,
            dp=world // (mp * pp),
            mp=mp,
            pp=pp,
            micro_batch_num=max(st.micro_batch_num, pp),
            offset=offset,
        )
        if estimate_memory(m, cand, flash, infer_length).fits:
            return cand
    return None


def suggest_layouts(
    m: ModelPreset,
    st: Strategy,
    profile: HardwareProfile,
    max_world: int = 1024,
    flash: Optional[bool] = None,
    infer_length: Optional[int] = None,
) -> tuple[Optional[Strategy], Optional[Strategy]]:
    """(fewest devices that fit, a fitting layout of the current world size), None where none exists.
    ``flash`` None: where the profile has flash attention."""
    flash = profile.flash_attention if flash is None else flash
    same = _fitting(m, st, profile, st.world, flash, infer_length)
    smallest = next(
        (c for w in range(1, max_world + 1) if (c := _fitting(m, st, profile, w, flash, infer_length))), None
    )
    return smallest, same


def shorter_sequence(
    m: ModelPreset, st: Strategy, profile: HardwareProfile, flash: bool, floor: int = 256
) -> Optional[tuple[int, Strategy]]:
    """The longest seq_length (halving from the model's) at which a layout of the current world size
    fits, with that layout; None when none does down to ``floor``."""
    seq = m.seq_length // 2
    while seq >= floor:
        cand = _fitting(replace(m, seq_length=seq), st, profile, st.world, flash)
        if cand is not None:
            return seq, cand
        seq //= 2
    return None


def check_fits(
    m: ModelPreset,
    st: Strategy,
    profile: HardwareProfile,
    flash: Optional[bool] = None,
    infer_length: Optional[int] = None,
) -> MemoryEstimate:
    """The estimate of ``st``; PlanError saying by how much it overflows and what would fit.
    ``flash`` None: where the profile has flash attention (``HardwareProfile.flash_attention``)."""
    flash = profile.flash_attention if flash is None else flash
    est = estimate_memory(m, st, flash, infer_length)
    if est.fits:
        return est
    smallest, same = suggest_layouts(m, st, profile, flash=flash, infer_length=infer_length)
    dense = not flash or not (st.training or st.task == "eval")
    attention = ", dense attention (no flash attention)" if dense else ""
    lines = [
        f"{st.task} with dp{st.dp} mp{st.mp} pp{st.pp} needs ~{est.total_gb:.1f} GB per device, "
        f"{est.total_gb - est.budget_gb:.1f} GB more than max_device_memory {est.budget_gb:g} GB "
        f"(weights {est.weights_gb:.1f}, gradients {est.gradients_gb:.1f}, optimizer {est.optimizer_gb:.1f}, "
        f"activations {est.activations_gb:.1f}{attention}, logits {est.logits_gb:.1f}, "
        f"kv cache {est.kv_cache_gb:.1f})"
    ]
    if st.training and not st.recompute and est.activations_recompute_gb < est.activations_gb:
        lines.append(
            "  - recompute would cut activations to "
            f"{est.activations_recompute_gb:.1f} GB (--set parallel.recompute=true)"
        )
    for label, cand in (("with your devices", same), ("smallest that fits", smallest)):
        if cand is not None:
            nodes = -(-cand.world // profile.devices_per_node)
            lines.append(
                f"  - {label}: dp{cand.dp} mp{cand.mp} pp{cand.pp} on {cand.world} device(s) "
                f"({nodes} node(s)), ~{estimate_memory(m, cand, flash, infer_length).total_gb:.1f} GB per device"
            )
    if smallest is None:
        lines.append("  - no layout of this profile fits this model; use a smaller model or a larger device")
        shorter = shorter_sequence(m, st, profile, flash) if st.training or st.task == "eval" else None
        if shorter is not None:
            seq, cand = shorter
            short = replace(m, seq_length=seq)
            lines.append(
                f"  - with your devices, a shorter sequence fits: seq_length {seq} with dp{cand.dp} "
                f"mp{cand.mp} pp{cand.pp}, ~{estimate_memory(short, cand, flash).total_gb:.1f} GB per "
                f"device (--set model.seq_length={seq}; the dataset rows must match)"
            )
    raise PlanError("\n".join(lines))
