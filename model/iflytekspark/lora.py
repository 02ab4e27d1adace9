"""LoRA with mindpet's LoRADense, so parameter names are ``<linear>.mindpet_delta_lora_a`` [r, in] and
``<linear>.mindpet_delta_lora_b`` [out, r] (docs/model.md §3): rank 3, alpha 128, dropout 0, A HeUniform, B zeros.

The YAML route (``model.model_config.pet_config: {pet_type: lora, lora_rank: 3, lora_alpha: 128,
lora_dropout: 0.0, target_modules: "q_proj|v_proj|k_proj|out_proj|fc0|fc1|fc2"}``) goes through
MindFormers' ``build_network`` -> PetModel, which performs the same replacement; this module does it
directly and adds freezing, LoRA-only save/load and merging into the base weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Union

import mindspore as ms
import mindspore.common.dtype as mstype
from mindpet.delta.lora import LoRADense
from mindspore import Tensor, nn, ops

from .checkpoint import read_checkpoint
from .errors import CheckpointError

__all__ = [
    "LORA_TARGETS",
    "LoraSettings",
    "apply_lora",
    "is_lora_name",
    "freeze_base",
    "lora_state",
    "save_lora",
    "load_lora",
    "merged_state",
    "save_merged",
]

LORA_TARGETS = "q_proj|v_proj|k_proj|out_proj|fc0|fc1|fc2"
_MARK = "mindpet_delta_lora"


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 3
    alpha: float = 128.0
    dropout: float = 0.0
    target_modules: str = LORA_TARGETS  # regex, re.match on the Dense cell's attribute name

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    @classmethod
    def from_pet_config(cls, pet: Mapping[str, Any]) -> LoraSettings:
        """From a MindFormers pet_config mapping (lora_rank, lora_alpha, lora_dropout, target_modules)."""
        default = cls()
        return cls(
            rank=int(pet.get("lora_rank", default.rank)),
            alpha=float(pet.get("lora_alpha", default.alpha)),
            dropout=float(pet.get("lora_dropout", default.dropout)),
            target_modules=pet.get("target_modules") or default.target_modules,
        )


def is_lora_name(name: str) -> bool:
    return _MARK in name


def apply_lora(model: nn.Cell, settings: LoraSettings = LoraSettings()) -> List[str]:
    """Replace every matching Dense of ``model`` (the top-level model) by a LoRADense sharing its
    weight and bias. Returns the replaced cell paths. Parameter names are refreshed from the tree."""
    replaced = []
    for path, parent in list(model.cells_and_names()):
        for attr, child in list(parent.name_cells().items()):
            if isinstance(child, nn.Dense) and not isinstance(child, LoRADense):
                if re.match(settings.target_modules, attr):
                    setattr(parent, attr, _lora_dense(child, settings))
                    replaced.append(f"{path}.{attr}" if path else attr)
    model.update_parameters_name()
    return replaced


def _lora_dense(dense: nn.Dense, s: LoraSettings) -> LoRADense:
    cell = LoRADense(
        dense.in_channels,
        dense.out_channels,
        lora_rank=s.rank,
        lora_alpha=s.alpha,
        lora_dropout=s.dropout,
        param_init_type=dense.weight.dtype,
        compute_dtype=getattr(dense, "compute_dtype", dense.weight.dtype),
        has_bias=dense.has_bias,
    )
    cell.weight, cell.matmul = dense.weight, dense.matmul  # keep the base weight and its sharding
    if dense.has_bias:
        cell.bias, cell.bias_add = dense.bias, dense.bias_add
    strategy = dense.matmul.in_strategy  # ((x), (w)) if the base Dense was sharded
    if strategy:
        (x_dp, x_in), (w_out, w_in) = strategy
        cell.lora_a_matmul.shard(((x_dp, x_in), (1, w_in)))  # x (N, in) x A (r, in)^T -> (N, r)
        cell.lora_b_matmul.shard(((x_dp, 1), (w_out, 1)))  # (N, r) x B (out, r)^T -> (N, out)
        cell.mul.shard(((x_dp, w_out), ()))
        cell.add.shard(((x_dp, w_out), (x_dp, w_out)))
    return cell


def freeze_base(model: nn.Cell) -> List[str]:
    """Only LoRA parameters stay trainable. Returns their names."""
    for param in model.get_parameters():
        param.requires_grad = is_lora_name(param.name)
    return [p.name for p in model.trainable_params()]


def lora_state(model: nn.Cell) -> Dict[str, Tensor]:
    return {p.name: p for p in model.get_parameters() if is_lora_name(p.name)}


def save_lora(model: nn.Cell, path: str) -> List[str]:
    """Write the LoRA parameters alone to a .ckpt file."""
    state = lora_state(model)
    if not state:
        raise CheckpointError(path, missing=["<no LoRA parameters in the model: call apply_lora first>"])
    ms.save_checkpoint([{"name": n, "data": p} for n, p in state.items()], path)
    return list(state)


def load_lora(model: nn.Cell, source: Union[str, Mapping[str, Any]]) -> List[str]:
    """Load LoRA weights (a LoRA-only or full checkpoint); every LoRA parameter must be present."""
    weights = read_checkpoint(source, [])
    state = lora_state(model)
    missing = [n for n in state if n not in weights]
    mismatched = [
        f"{n}: checkpoint {tuple(weights[n].shape)} vs model {tuple(p.shape)}"
        for n, p in state.items()
        if n in weights and tuple(weights[n].shape) != tuple(p.shape)
    ]
    if missing or mismatched or not state:
        name = source if isinstance(source, str) else "<dict>"
        raise CheckpointError(name, missing or ["<no LoRA parameters in the model>"], mismatched)
    for name, param in state.items():
        value = weights[name]
        param.set_data((value if isinstance(value, Tensor) else Tensor(value)).astype(param.dtype))
    return list(state)


def merged_state(model: nn.Cell) -> Dict[str, Tensor]:
    """Base weights with W += scaling * B @ A (in float32, cast back) and LoRA keys dropped: a plain
    checkpoint of the base model."""
    state = {p.name: p for p in model.get_parameters() if not is_lora_name(p.name)}
    for _, cell in model.cells_and_names():
        if isinstance(cell, LoRADense):
            a = ops.cast(cell.mindpet_delta_lora_a, mstype.float32)  # (r, in)
            b = ops.cast(cell.mindpet_delta_lora_b, mstype.float32)  # (out, r)
            merged = ops.cast(cell.weight, mstype.float32) + cell.scaling * ops.matmul(b, a)
            state[cell.weight.name] = ops.cast(merged, cell.weight.dtype)
    return state


def save_merged(model: nn.Cell, path: str) -> None:
    ms.save_checkpoint([{"name": n, "data": v} for n, v in merged_state(model).items()], path)
