"""Checkpoint names, shapes and strict loading (docs/model.md §3).

``expected_parameters`` is pure Python (no MindSpore), so the 13B table can be checked anywhere.
``load_weights`` drops and reports keys we never load (attention masks, KV caches, optimizer state),
and refuses a checkpoint with missing keys or wrong shapes, naming every one of them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

from .errors import CheckpointError

__all__ = [
    "expected_parameters",
    "parameter_count",
    "is_ignored_key",
    "LoadReport",
    "read_checkpoint",
    "load_weights",
]

log = logging.getLogger(__name__)

Shape = Tuple[int, ...]

# Keys found in released or training checkpoints that are not weights of the model (docs/model.md §3).
IGNORED_KEY_PATTERNS = (
    r".*\.slice_sparse_mask$",  # attention masks stored as parameters by the reference
    r".*\.(key|value)_past$",  # KV caches
    r"^(adam_m|adam_v|moments|accu_grads|exp_avg|exp_avg_sq)\.",  # optimizer moments
    r"^(global_step|learning_rate|beta1_power|beta2_power|scale_sense|loss_scale|current_iterator_step"
    r"|last_overflow_iterator_step|epoch_num|step_num)$",  # optimizer / loss-scale / loop state
)
_IGNORED = re.compile("|".join(f"(?:{p})" for p in IGNORED_KEY_PATTERNS))

# Model parameters a base checkpoint need not hold: they keep their initial values.
OPTIONAL_PARAM_MARKERS = ("mindpet_delta_lora",)


def _get(config: Any, name: str) -> Any:
    return config[name] if isinstance(config, Mapping) else getattr(config, name)


def expected_parameters(config: Any) -> Dict[str, Shape]:
    """Checkpoint key -> shape of the base model for a config (object or mapping), in model order."""
    vocab, hidden = _get(config, "vocab_size"), _get(config, "hidden_size")
    inner = _get(config, "ffn_hidden_size") // 2
    table: Dict[str, Shape] = {"transformer.embedding.word_embeddings.embedding_table": (vocab, hidden)}
    for i in range(_get(config, "num_layers")):
        p = f"transformer.transformer.layers.{i}."
        table[p + "layer_norm.gamma"] = (hidden,)
        table[p + "layer_norm.beta"] = (hidden,)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            table[f"{p}attention.{proj}.weight"] = (hidden, hidden)  # [out, in]
            table[f"{p}attention.{proj}.bias"] = (hidden,)
        table[p + "final_layer_norm.gamma"] = (hidden,)
        table[p + "final_layer_norm.beta"] = (hidden,)
        for fc, (out, inp) in (("fc0", (inner, hidden)), ("fc1", (inner, hidden)), ("fc2", (hidden, inner))):
            table[f"{p}mlp.{fc}.weight"] = (out, inp)
            table[f"{p}mlp.{fc}.bias"] = (out,)
    table["transformer.transformer.layernorm.gamma"] = (hidden,)
    table["transformer.transformer.layernorm.beta"] = (hidden,)
    return table


def parameter_count(shapes: Mapping[str, Shape]) -> int:
    total = 0
    for shape in shapes.values():
        n = 1
        for d in shape:
            n *= d
        total += n
    return total


def is_ignored_key(name: str) -> bool:
    """True for checkpoint keys that are never model weights (masks, caches, optimizer state)."""
    return _IGNORED.match(name) is not None


@dataclass
class LoadReport:
    """What happened to each key of a checkpoint."""

    source: str
    loaded: List[str] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)  # known non-weights, dropped
    unexpected: List[str] = field(default_factory=list)  # unknown keys, dropped with a warning
    missing: List[str] = field(default_factory=list)  # model parameters not in the checkpoint
    mismatched: List[str] = field(default_factory=list)  # "name: checkpoint (a, b) vs model (c, d)"

    def __str__(self) -> str:
        text = f"{self.source}: loaded {len(self.loaded)}, ignored {len(self.ignored)}"
        for label, keys in (("unexpected", self.unexpected), ("missing", self.missing)):
            if keys:
                text += f", {label} {len(keys)}: {', '.join(keys)}"
        return text


def read_checkpoint(source: Union[str, Mapping[str, Any]], ignored: List[str]) -> Dict[str, Any]:
    """Name -> tensor of a .ckpt file (ignored keys skipped at read time, their names appended) or a dict."""
    if not isinstance(source, str):
        ignored.extend(name for name in source if is_ignored_key(name))
        return {name: value for name, value in source.items() if not is_ignored_key(name)}
    import mindspore as ms

    def choose(name: str) -> bool:
        if is_ignored_key(name):
            ignored.append(name)
            return False
        return True

    return ms.load_checkpoint(source, choice_func=choose)


def load_weights(
    model: Any,
    source: Union[str, Mapping[str, Any]],
    strict: bool = True,
    optional: Sequence[str] = OPTIONAL_PARAM_MARKERS,
) -> LoadReport:
    """Load a checkpoint (path or name -> tensor dict) into ``model`` by parameter name.

    strict: any model parameter missing from the checkpoint (except names containing an ``optional``
    marker, e.g. LoRA deltas) or any shape mismatch raises CheckpointError naming all of them,
    before anything is loaded. Values are cast to each parameter's dtype.
    """
    from mindspore import Tensor

    report = LoadReport(source=source if isinstance(source, str) else "<dict>")
    weights = read_checkpoint(source, report.ignored)
    params = {p.name: p for p in model.get_parameters()}
    for name, value in weights.items():
        param = params.get(name)
        if param is None:
            report.unexpected.append(name)
        elif tuple(value.shape) != tuple(param.shape):
            report.mismatched.append(f"{name}: checkpoint {tuple(value.shape)} vs model {tuple(param.shape)}")
    report.missing = [n for n in params if n not in weights and not any(marker in n for marker in optional)]
    if strict and (report.missing or report.mismatched):
        raise CheckpointError(report.source, report.missing, report.mismatched)
    bad = {m.split(":")[0] for m in report.mismatched}
    for name, value in weights.items():
        if name in params and name not in bad:
            param = params[name]
            value = value if isinstance(value, Tensor) else Tensor(value)
            param.set_data(value.astype(param.dtype))
            report.loaded.append(name)
    if report.unexpected:
        log.warning(
            "%s: %d unexpected key(s) not loaded: %s",
            report.source,
            len(report.unexpected),
            ", ".join(report.unexpected),
        )
    log.info("%s", report)
    return report
