"""Job options: the inventory's ``job:`` defaults with ``--set job.*`` laid over them, type-checked."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping, Optional

from orchestrator.errors import InputError, Problem


@dataclass(frozen=True)
class JobOptions:
    """What a job reads and how long it runs. Paths are controller paths (pushed to the nodes) unless
    they lie under a cluster shared path. ``None`` learning-rate fields take the task's reference
    values (docs/model.md §4); ``auto_trans_ckpt`` None means: on for training when a checkpoint is loaded."""

    model: str = "13b"
    tokenizer: Optional[str] = None
    train_dataset: Optional[str] = None
    eval_dataset: Optional[str] = None
    load_checkpoint: Optional[str] = None
    output_dir: str = "output"
    resume: bool = False
    only_save_strategy: bool = False
    auto_trans_ckpt: Optional[bool] = None
    epochs: int = 1
    sink_size: int = 2
    save_checkpoint_steps: int = 1000
    seed: int = 0
    learning_rate: Optional[float] = None
    lr_end: Optional[float] = None
    warmup_steps: Optional[int] = None
    total_steps: int = 300000
    predict_data: Optional[str] = None
    predict_length: int = 512
    predict_batch: Optional[int] = None
    mindir_save_dir: Optional[str] = None
    sched_port: int = 8118


@dataclass(frozen=True)
class LrSchedule:
    start: float
    end: float
    warmup_steps: int
    total_steps: int


_TYPES = {f.name: f.type for f in fields(JobOptions)}


def _check(key: str, value: Any) -> Any:
    kind = _TYPES[key]
    if value in (None, "") and kind.startswith("Optional"):  # job.load_checkpoint= clears it
        return None
    base = kind.removeprefix("Optional[").removesuffix("]")
    if base == "bool" and isinstance(value, bool):
        return value
    if base == "int" and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if base == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if base == "str" and value not in ("", None):
        return str(value)
    raise InputError([Problem("--set", f"job.{key}", f"{value!r} is not valid", f"give a {base}")])


def job_options(defaults: Any, overrides: Mapping[str, Any]) -> JobOptions:
    """Options from the inventory's ``JobDefaults`` (its fields of the same name) and ``job.*`` overrides."""
    base = {f.name: getattr(defaults, f.name) for f in fields(JobOptions) if hasattr(defaults, f.name)}
    opts = replace(JobOptions(), **base)
    unknown = sorted(set(overrides) - set(_TYPES))
    if unknown:
        raise InputError(
            [
                Problem("--set", f"job.{k}", "unknown job option", f"use one of {', '.join(sorted(_TYPES))}")
                for k in unknown
            ]
        )
    return replace(opts, **{k: _check(k, v) for k, v in overrides.items()})


def lr_schedule(task: str, opts: JobOptions) -> LrSchedule:
    """Pretrain 3e-4 -> 3e-5 with 1020 warm-up steps; SFT and LoRA 3e-5 -> 3e-6, no warm-up."""
    start, end, warmup = (3e-4, 3e-5, 1020) if task == "pretrain" else (3e-5, 3e-6, 0)
    return LrSchedule(
        start=opts.learning_rate if opts.learning_rate is not None else start,
        end=opts.lr_end if opts.lr_end is not None else end,
        warmup_steps=opts.warmup_steps if opts.warmup_steps is not None else warmup,
        total_steps=opts.total_steps,
    )
