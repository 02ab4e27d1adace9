"""Registration with MindFormers, so that a YAML with ``model.arch.type: IFlytekSparkForCausalLM`` and
``model.model_config.type: IFlytekSparkConfig`` builds the model (``mindformers.models.build_network``,
the Trainer). Importing this module imports MindSpore and MindFormers.
"""

from __future__ import annotations

from typing import Any, Mapping, Tuple

from mindformers.tools.register import MindFormerConfig, MindFormerModuleType, MindFormerRegister

# Importing the modules runs their @MindFormerRegister.register decorators.
from .config import IFlytekSparkConfig
from .model import IFlytekSparkForCausalLM

__all__ = ["register", "build_from_yaml_dict"]


def register() -> Tuple[type, type]:
    """Ensure the config and model are registered (idempotent); returns (config class, model class)."""
    for kind, cls in (
        (MindFormerModuleType.CONFIG, IFlytekSparkConfig),
        (MindFormerModuleType.MODELS, IFlytekSparkForCausalLM),
    ):
        if not MindFormerRegister.is_exist(kind, cls.__name__):
            MindFormerRegister.register_cls(cls, module_type=kind)
    return IFlytekSparkConfig, IFlytekSparkForCausalLM


def build_from_yaml_dict(model_section: Mapping[str, Any], **default_args: Any) -> Any:
    """Build the network of a YAML ``model:`` section the way MindFormers' Trainer does (LoRA included
    when ``model_config.pet_config`` is set)."""
    from mindformers.models.build_model import build_network

    register()
    return build_network(MindFormerConfig(**model_section), default_args=default_args or None)
