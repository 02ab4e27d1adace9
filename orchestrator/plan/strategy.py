"""The parallel strategy of a job: layout (dp x mp x pp) plus the settings that go with it.

Defaults are the reference layouts of docs/model.md §9 (``HardwareProfile.layouts``); ``--set parallel.*``
overrides them. When the default layout does not use every device of the inventory, the model and
pipeline degrees are kept and data parallelism absorbs the rest (dp = world / (mp * pp)).

Only switches the model implements are rendered (docs/model.md §9): sequence parallelism and recompute
slicing are not, so they stay off (the Atlas 800 reference's values are kept as profile data only) and
asking for them is an InputError naming the field. Layers go to pipeline stages by
``iflytekspark.stages`` (``offset``, one int per stage, as MindFormers' LLaMA takes it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional

import yaml
from iflytekspark.stages import StageError, stage_layer_counts

from orchestrator.errors import InputError, PlanError, Problem
from orchestrator.inventory.profiles import HardwareProfile, Layout
from orchestrator.plan.model_presets import ModelPreset

TRAIN_TASKS = ("pretrain", "finetune", "lora")
INFER_TASKS = ("predict", "predict_lora", "export")
DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class Strategy:
    """Everything about how one job is spread over devices and what precision it computes in."""

    task: str
    dp: int
    mp: int
    pp: int
    micro_batch_num: int = 1
    micro_batch_interleave_num: int = 1
    offset: tuple[int, ...] = ()  # layers per stage beyond num_layers // pp; () = none
    batch_size: int = 1
    optimizer_shard: bool = True
    vocab_emb_dp: bool = False
    gradient_aggregation_group: int = 4
    seq_parallel: bool = False
    recompute: bool = True
    recompute_slice: bool = False
    compute_dtype: str = "bfloat16"
    max_device_memory_gb: float = 58.0

    @property
    def world(self) -> int:
        return self.dp * self.mp * self.pp

    @property
    def training(self) -> bool:
        return self.task in TRAIN_TASKS

    @property
    def loss_scale(self) -> str:
        """``dynamic`` for float16 training (overflow-prone), ``fixed`` (value 1) otherwise."""
        return "dynamic" if self.training and self.compute_dtype == "float16" else "fixed"

    @property
    def layout(self) -> Layout:
        return Layout(self.dp, self.mp, self.pp)

    @property
    def model_offset(self) -> Any:
        """``offset`` as model_config takes it: 0, or the list of one int per stage."""
        return list(self.offset) if self.offset else 0


_INTS = (
    "dp",
    "mp",
    "pp",
    "micro_batch_num",
    "micro_batch_interleave_num",
    "batch_size",
    "gradient_aggregation_group",
)
_BOOLS = ("optimizer_shard", "vocab_emb_dp", "seq_parallel", "recompute", "recompute_slice")
_WANT = {
    **{f: "a positive integer" for f in _INTS},
    **{f: "true or false" for f in _BOOLS},
    "compute_dtype": f"one of {', '.join(DTYPES)}",
    "max_device_memory_gb": "a positive number",
    "offset": "a list of one int per pipeline stage summing to num_layers % pp, e.g. [1,-1], or 0",
}
# --set parallel.<key> -> Strategy field (short and MindFormers spellings both accepted).
KEYS = {
    **{f: f for f in _WANT},
    "data_parallel": "dp",
    "model_parallel": "mp",
    "pipeline_stage": "pp",
    "use_seq_parallel": "seq_parallel",
    "recompute_slice_activation": "recompute_slice",
}
# Switches the plan knows but the model does not implement: refused when asked for, with the reason.
UNSUPPORTED = {
    "seq_parallel": "model/iflytekspark does not implement sequence parallelism (no layer splits its "
    "LayerNorm or residual activations along the sequence over mp)",
    "recompute_slice": "model/iflytekspark recomputes whole layers only (layer.recompute()); it does not "
    "implement recompute slicing (recompute_slice_activation)",
}


def default_strategy(profile: HardwareProfile, task: str) -> Strategy:
    """The reference settings of ``task`` on ``profile`` (layout not yet fitted to the world size)."""
    ref = profile.layout_for(task)
    if ref is None:
        why = (
            "it is an inference server (MindFormers supports Atlas 800I A2 for inference); train on "
            "atlas-800t-a2-64g or atlas-900-a3-64g nodes"
            if task in TRAIN_TASKS and not any(t in profile.layouts for t in TRAIN_TASKS)
            else "no reference layout exists for it there"
        )
        raise PlanError(
            f"profile {profile.name} ({profile.description}) runs {', '.join(profile.tasks)} only, "
            f"not {task}: {why}"
        )
    training = task in TRAIN_TASKS
    return Strategy(
        task=task,
        dp=ref.dp,
        mp=ref.mp,
        pp=ref.pp,
        optimizer_shard=training and profile.accelerator,
        seq_parallel=False,  # profile.seq_parallel is the reference's value; the model lacks it (UNSUPPORTED)
        recompute=training,
        recompute_slice=False,  # likewise profile.recompute_slice
        compute_dtype=profile.train_dtype if training else profile.infer_dtype,
        max_device_memory_gb=float(profile.max_device_memory_gb[task]),
    )


def _offset(key: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, str):  # --set gives a list as its text
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            pass
    if value == 0 and not isinstance(value, bool):
        return ()
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    raise InputError(
        [Problem("--set", f"parallel.{key}", f"{value!r} is not valid", f"give {_WANT['offset']}")]
    )


def _typed(key: str, field: str, value: Any) -> Any:
    if field == "offset":
        return _offset(key, value)
    if field in UNSUPPORTED and value is True:
        raise InputError(
            [
                Problem(
                    "--set",
                    f"parallel.{key}",
                    UNSUPPORTED[field],
                    f"leave parallel.{key} false (the default)",
                )
            ]
        )
    ok = (
        (field in _INTS and isinstance(value, int) and not isinstance(value, bool) and value >= 1)
        or (field in _BOOLS and isinstance(value, bool))
        or (field == "compute_dtype" and value in DTYPES)
        or (field == "max_device_memory_gb" and isinstance(value, (int, float)) and value > 0)
    )
    if not ok:
        raise InputError(
            [Problem("--set", f"parallel.{key}", f"{value!r} is not valid", f"give {_WANT[field]}")]
        )
    return float(value) if field == "max_device_memory_gb" else value


def choose_strategy(
    profile: HardwareProfile,
    task: str,
    world: int,
    model: ModelPreset,
    overrides: Optional[Mapping[str, Any]] = None,
) -> Strategy:
    """The validated strategy for ``task`` on ``world`` devices: reference defaults, then overrides."""
    base = default_strategy(profile, task)
    values: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if key not in KEYS:
            raise InputError(
                [
                    Problem(
                        "--set",
                        f"parallel.{key}",
                        "unknown strategy key",
                        f"use one of {', '.join(sorted(KEYS))}",
                    )
                ]
            )
        values[KEYS[key]] = _typed(key, KEYS[key], value)
    model_offset = dict(model.extra).get("offset")  # a model_config YAML's offset, unless --set
    if "offset" not in values and model_offset is not None:
        values["offset"] = _offset("offset", model_offset)
    strategy = replace(base, **values)
    if "dp" not in values and strategy.world != world:
        per_replica = strategy.mp * strategy.pp
        if world % per_replica == 0:
            strategy = replace(strategy, dp=world // per_replica)
    if strategy.pp > 1 and strategy.vocab_emb_dp:
        raise InputError(
            [
                Problem(
                    "--set",
                    "parallel.vocab_emb_dp",
                    f"MindFormers' build_parallel_config resets vocab_emb_dp to false when pipeline_stage > 1 "
                    f"(pp {strategy.pp}): the job would not run the layout the plan renders",
                    "leave parallel.vocab_emb_dp false with pp > 1",
                )
            ]
        )
    validate_strategy(strategy, model, profile, world)
    return strategy


def layout_problems(
    layout: Layout, model: ModelPreset, profile: HardwareProfile, world: int, offset: tuple[int, ...] = ()
) -> list[str]:
    """Every rule ``layout`` breaks, each naming the rule (empty when valid)."""
    dp, mp, pp = layout.dp, layout.mp, layout.pp
    out = []
    if dp * mp * pp != world:
        out.append(f"dp*mp*pp must equal the world size: {dp}*{mp}*{pp} = {dp * mp * pp} != {world} devices")
    for what, size in (
        ("num_heads", model.num_heads),
        ("hidden_size", model.hidden_size),
        ("ffn inner size", model.ffn_inner),
        ("vocab_size", model.vocab_size),
    ):
        if size % mp:
            out.append(f"model parallel must divide {what}: {size} % mp {mp} != 0")
    if offset:
        try:
            stage_layer_counts(model.num_layers, pp, list(offset))
        except StageError as exc:
            out.append(f"parallel.offset does not split num_layers {model.num_layers} over pp {pp}: {exc}")
    elif model.num_layers % pp:
        out.append(
            f"pipeline stages must divide num_layers: {model.num_layers} % pp {pp} != 0 (or give "
            f"parallel.offset, one int per stage summing to {model.num_layers % pp})"
        )
    if not profile.accelerator and (mp > 1 or pp > 1):
        out.append(
            f"profile {profile.name} is data parallel only (mp and pp must be 1, got mp {mp}, pp {pp})"
        )
    return out


def validate_strategy(strategy: Strategy, model: ModelPreset, profile: HardwareProfile, world: int) -> None:
    """Raise PlanError naming every rule ``strategy`` breaks for ``model`` on ``world`` devices."""
    problems = layout_problems(strategy.layout, model, profile, world, strategy.offset)
    if strategy.pp > 1 and strategy.micro_batch_num < strategy.pp:
        problems.append(
            f"micro_batch_num must be >= pp with pipeline parallelism "
            f"({strategy.micro_batch_num} < {strategy.pp})"
        )
    if strategy.micro_batch_interleave_num > 1 and not (profile.accelerator and strategy.training):
        problems.append(
            "micro_batch_interleave_num > 1 (MindFormers' MicroBatchInterleaved, overlapping mp "
            "communication) is for training on an accelerator only; it must be 1 here"
        )
    if strategy.pp > 1 and not strategy.training:
        problems.append(f"pipeline parallelism is for training only; task {strategy.task} needs pp 1")
    if not profile.accelerator and strategy.compute_dtype != "float32":
        problems.append(f"profile {profile.name} computes in float32 (got {strategy.compute_dtype})")
    if problems:
        raise PlanError(
            f"no valid {strategy.task} layout dp{strategy.dp} mp{strategy.mp} pp{strategy.pp} "
            f"on {world} device(s):\n" + "\n".join(f"  - {p}" for p in problems)
        )
