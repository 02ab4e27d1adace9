"""iflytekspark: the iFlytekSpark-13B model package (runs on the nodes, Python 3.9+).

Importing the package is cheap and does not import MindSpore; the model names below load on first
use. ``register()`` makes the model known to MindFormers (YAML ``model.arch.type``).
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule that defines it (imported lazily)
_LAZY = {
    "IFlytekSparkConfig": "config",
    "GenerationConfig": "generation_config",
    "IFlytekSparkForCausalLM": "model",
    "load_weights": "checkpoint",
    "expected_parameters": "checkpoint",
    "LoraSettings": "lora",
    "apply_lora": "lora",
}

__all__ = ["register", *_LAZY]


def register() -> Any:
    """Register the config and the model with MindFormers (imports MindSpore)."""
    from .registry import register as _register

    return _register()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
