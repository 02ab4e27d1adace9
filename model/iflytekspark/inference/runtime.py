"""What predict and export share: the run's model with its checkpoint (and LoRA), and the rank.

The model is built from ``model.model_config`` of the run's YAML. ``--load_checkpoint`` (a file, or a
folder whose rank_0/ or itself holds *.ckpt) is loaded strictly: a checkpoint of another config is a
CheckpointError naming every mismatch. With ``model_config.pet_config`` (pet_type lora) the LoRA cells
are added first; their weights come from the same checkpoint if it holds them (a LoRA finetune saves
base and LoRA together) or from the YAML's ``lora_checkpoint`` (a LoRA-only or full file), loaded on top.
"""

from __future__ import annotations

import logging
from typing import Any, Dict

from ..tasks.setup import RunConfigError

log = logging.getLogger("iflytekspark.run")

_NOT_MODEL_FIELDS = ("type", "pet_config", "checkpoint_name_or_path")


def model_fields(config: Any) -> Dict[str, Any]:
    """The IFlytekSparkConfig keyword arguments of the YAML's model_config."""
    section = (config.get("model") or {}).get("model_config")
    if not section:
        raise RunConfigError("the YAML has no model.model_config section")
    return {k: v for k, v in dict(section).items() if k not in _NOT_MODEL_FIELDS}


def build_model(config: Any) -> Any:
    """The model of the run, weights loaded, in inference mode."""
    from ..checkpoint import load_weights
    from ..config import IFlytekSparkConfig
    from ..lora import LoraSettings, apply_lora, is_lora_name, load_lora
    from ..model import IFlytekSparkForCausalLM
    from ..tasks.evaluate import checkpoint_file

    model = IFlytekSparkForCausalLM(IFlytekSparkConfig(**model_fields(config)))
    pet = dict(config.model.model_config.get("pet_config") or {})
    lora = str(pet.get("pet_type", "")).lower() == "lora"
    if lora:
        apply_lora(model, LoraSettings.from_pet_config(pet))
    if not config.get("load_checkpoint"):
        raise RunConfigError(f"run_mode {config.run_mode} needs weights: set --load_checkpoint")
    report = load_weights(model, checkpoint_file(config.load_checkpoint), strict=True)
    log.info("weights: %s", report)
    if config.get("lora_checkpoint"):
        names = load_lora(model, config.lora_checkpoint)
        log.info("LoRA: %d tensors from %s", len(names), config.lora_checkpoint)
    elif lora and not any(is_lora_name(n) for n in report.loaded):
        raise RunConfigError(
            "pet_config asks for LoRA but the checkpoint holds no LoRA weights: set lora_checkpoint "
            "in the YAML to the LoRA checkpoint"
        )
    model.set_train(False)
    return model


def rank_id(config: Any) -> int:
    """This process's rank (0 when not parallel)."""
    if not config.get("use_parallel"):
        return 0
    from mindspore.communication import get_rank

    return int(get_rank())
