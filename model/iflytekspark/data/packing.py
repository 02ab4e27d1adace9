"""Cutting encoded samples into fixed rows of ``seq_length + 1`` ids (numpy, no mindspore).

Pretrain: all samples form one token stream, cut into rows; the last, partial row is padded with pad_id
(an exact multiple gives no padded row). SFT: greedy packing, a sample goes into the current row if it
fits, otherwise the row is padded (loss mask 0) and a new one starts; every row is written, including the
last. A sample longer than a row is either truncated to the row length or rejected, and counted.
Samples are ``(ids, prompt_len)`` (see :mod:`.encoding`); rows are ``(input_ids, loss_mask)`` int64 arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, List, Tuple

import numpy as np

Row = Tuple[np.ndarray, np.ndarray]  # (input_ids, loss_mask), both of the row length


@dataclass
class PackStats:
    """What packing did, for the summary."""

    samples: int = 0
    rows: int = 0
    tokens: int = 0  # sample tokens written (excluding padding)
    padding: int = 0
    truncated: int = 0
    rejected: int = 0
    dropped_tokens: int = 0  # tokens lost to truncation or rejection


def _padded(
    pieces: List[np.ndarray], masks: List[np.ndarray], row_len: int, pad_id: int, stats: PackStats
) -> Row:
    ids = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
    mask = np.concatenate(masks) if masks else np.zeros(0, np.int64)
    pad = row_len - len(ids)
    stats.rows += 1
    stats.padding += pad
    ids = np.concatenate([ids.astype(np.int64), np.full(pad, pad_id, np.int64)])
    return ids, np.concatenate([mask.astype(np.int64), np.zeros(pad, np.int64)])


def pack_pretrain(
    samples: Iterable[Tuple[np.ndarray, int]], row_len: int, pad_id: int, stats: PackStats
) -> Iterator[Row]:
    """Concatenate the samples' ids and cut them into rows of ``row_len``; pad the tail row."""
    pieces: List[np.ndarray] = []
    size = 0
    ones = np.ones(row_len, np.int64)
    for ids, _ in samples:
        stats.samples += 1
        stats.tokens += len(ids)
        pieces.append(ids)
        size += len(ids)
        if size >= row_len:
            stream = np.concatenate(pieces).astype(np.int64)
            full = len(stream) // row_len
            for r in range(full):
                stats.rows += 1
                yield stream[r * row_len : (r + 1) * row_len], ones
            pieces = [stream[full * row_len :]]
            size = len(pieces[0])
    if size:
        yield _padded(pieces, [np.ones(size, np.int64)], row_len, pad_id, stats)


def pack_sft(
    samples: Iterable[Tuple[np.ndarray, int]], row_len: int, pad_id: int, overlong: str, stats: PackStats
) -> Iterator[Row]:
    """Greedy packing of samples into rows of ``row_len``, padding each row with pad_id / mask 0."""
    if overlong not in ("truncate", "reject"):
        raise ValueError(f"overlong must be 'truncate' or 'reject', not {overlong!r}")
    pieces: List[np.ndarray] = []
    masks: List[np.ndarray] = []
    size = 0
    for ids, prompt_len in samples:
        stats.samples += 1
        if len(ids) > row_len:
            stats.dropped_tokens += len(ids) - (row_len if overlong == "truncate" else 0)
            if overlong == "reject":
                stats.rejected += 1
                continue
            stats.truncated += 1
            ids = ids[:row_len]
        if size and size + len(ids) > row_len:
            yield _padded(pieces, masks, row_len, pad_id, stats)
            pieces, masks, size = [], [], 0
        mask = np.ones(len(ids), np.int64)
        mask[: min(prompt_len, len(ids))] = 0
        pieces.append(ids)
        masks.append(mask)
        size += len(ids)
        stats.tokens += len(ids)
    if size:
        yield _padded(pieces, masks, row_len, pad_id, stats)
