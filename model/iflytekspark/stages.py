"""Which pipeline stage holds which decoder layer (docs/model.md §9). Plain Python: the planner uses it too.

MindFormers' rule (``LayerSetting`` in mindformers/parallel_core/training_graph/transformer/utils.py,
what its LLaMA uses): stage k holds ``num_layers // pp + offset[k]`` consecutive layers; ``offset``
is a list of pp ints whose sum is ``num_layers % pp``, or 0 (the reference YAMLs' value). The embedding sits
on stage 0, the final LayerNorm, the tied head and the loss on stage pp - 1.
"""

from __future__ import annotations

from typing import List, Sequence, Union

__all__ = ["StageError", "normalize_offset", "stage_layer_counts", "layer_stages"]

Offset = Union[int, Sequence[int], None]


class StageError(ValueError):
    """An offset list that does not fit num_layers and pp (the message names the rule)."""


def normalize_offset(offset: Offset, pp: int) -> List[int]:
    """``offset`` as a list of pp ints (None or 0: no offset)."""
    if offset is None:
        return [0] * pp
    if isinstance(offset, bool):
        raise StageError(f"offset must be an int or a list of {pp} ints, got {offset!r}")
    if isinstance(offset, int):
        if offset:  # MindFormers checks a lone int against the remainder but adds it to every stage
            raise StageError(
                f"offset {offset}: give one int per stage (a list of pp = {pp} ints); a lone int must be 0"
            )
        return [0] * pp
    values = list(offset)
    if len(values) != pp or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise StageError(f"offset must be a list of pp = {pp} ints (one per stage), got {list(values)!r}")
    return values


def stage_layer_counts(num_layers: int, pp: int, offset: Offset = None) -> List[int]:
    """Layers on each stage: num_layers // pp + offset[k]; every stage holds at least one layer."""
    if pp < 1:
        raise StageError(f"pipeline stages must be >= 1, got {pp}")
    offsets = normalize_offset(offset, pp)
    remainder = num_layers % pp
    if sum(offsets) != remainder:
        raise StageError(
            f"the offsets {offsets} must sum to num_layers % pp = {num_layers} % {pp} = {remainder} "
            f"(they sum to {sum(offsets)})"
        )
    counts = [num_layers // pp + o for o in offsets]
    if min(counts) < 1:
        raise StageError(f"offset {offsets} leaves a stage without layers: layers per stage {counts}")
    return counts


def layer_stages(num_layers: int, pp: int, offset: Offset = None) -> List[int]:
    """The stage of each layer, layers in order: [0, 0, ..., 1, 1, ...]."""
    out: List[int] = []
    for stage, count in enumerate(stage_layer_counts(num_layers, pp, offset)):
        out.extend([stage] * count)
    return out
