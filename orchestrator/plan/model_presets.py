"""Model presets as data: the 13B architecture of the released model and a tiny one for CPU tests.

A preset holds the architecture fields the planner reasons about (divisibility, memory) and that the
templates write into ``model.model_config``. ``--set model.<field>=...`` replaces a field; keys that
are not fields here go to ``extra`` and are passed to the YAML verbatim (the model's own config class
checks them). The 13B values come from ``iflytekspark.presets`` (plain data, no MindSpore).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

import yaml
from iflytekspark.presets import SPARK_13B

from orchestrator.errors import InputError, Problem


@dataclass(frozen=True)
class ModelPreset:
    """Architecture of one model size. ``ffn_hidden_size`` is twice the MLP's inner width (gated MLP)."""

    name: str
    vocab_size: int
    hidden_size: int
    ffn_hidden_size: int
    num_layers: int
    num_heads: int
    seq_length: int
    sparse_local_size: int
    layernorm_epsilon: float = 1e-5
    pad_token_id: int = 0
    bos_token_id: int = 1
    eos_token_id: int = 5
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def ffn_inner(self) -> int:
        """Width of fc0/fc1 outputs (the gated MLP's inner size)."""
        return self.ffn_hidden_size // 2

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def layer_params(self) -> int:
        """Parameters of one decoder layer: 4 attention linears, 3 MLP linears, 2 LayerNorms."""
        h, f = self.hidden_size, self.ffn_inner
        return 4 * (h * h + h) + 2 * (h * f + f) + (f * h + h) + 4 * h

    @property
    def num_params(self) -> int:
        """All parameters: embedding (tied head), layers, final LayerNorm."""
        return self.vocab_size * self.hidden_size + self.num_layers * self.layer_params + 2 * self.hidden_size

    def model_config_fields(self) -> dict[str, Any]:
        """The architecture fields in the order the YAML lists them (``extra`` last)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("name", "extra")}
        out.update({k: v for k, v in self.extra if k != "offset"})  # offset: from the strategy
        return out


PRESETS: dict[str, ModelPreset] = {
    "13b": ModelPreset(name="13b", **SPARK_13B),
    "tiny": ModelPreset(
        name="tiny",
        vocab_size=1024,
        hidden_size=64,
        ffn_hidden_size=256,
        num_layers=2,
        num_heads=4,
        seq_length=64,
        sparse_local_size=32,
    ),
}

_FIELDS = {f.name for f in fields(ModelPreset)} - {"name", "extra"}


def with_overrides(preset: ModelPreset, values: Mapping[str, Any]) -> ModelPreset:
    """``preset`` with ``model.*`` overrides: known fields replaced, others appended to ``extra``."""
    known = {k: v for k, v in values.items() if k in _FIELDS}
    extra = dict(preset.extra)
    extra.update({k: v for k, v in values.items() if k not in _FIELDS})
    return replace(preset, **known, extra=tuple(sorted(extra.items())))


def resolve_model(spec: str, source: str = "job.model") -> ModelPreset:
    """The preset named ``spec``, or a model_config YAML at path ``spec`` laid over the 13B preset."""
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec).expanduser()
    if not path.is_file():
        raise InputError(
            [
                Problem(
                    source,
                    "model",
                    f"{spec!r} is neither a preset nor a file",
                    f"use one of {', '.join(sorted(PRESETS))} or a path to a model_config YAML",
                )
            ]
        )
    data = yaml.safe_load(path.read_text()) or {}
    data = data.get("model", {}).get("model_config", data) if isinstance(data, dict) else data
    if not isinstance(data, dict):
        raise InputError([Problem(str(path), "model_config", "not a mapping", "write key: value pairs")])
    data = {k: v for k, v in data.items() if k != "type"}
    return replace(with_overrides(PRESETS["13b"], data), name=path.stem)
