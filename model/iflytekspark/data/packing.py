"""Cutting encoded samples into fixed rows of ``seq_length + 1`` ids (pure Python, no mindspore).

Pretrain: all samples form one token stream, cut into rows; the last, partial row is padded with pad_id
(an exact multiple gives no padded row). SFT: greedy packing, a sample goes into the current row if it
fits, otherwise the row is padded (loss mask 0) and a new one starts; every row is written, including the
last. A sample longer than a row is either truncated to the row length or rejected, and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, List, Tuple

Row = Tuple[List[int], List[int]]  # (input_ids, loss_mask), both of the row length


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


def pack_pretrain(
    samples: Iterable[Tuple[List[int], List[int]]], row_len: int, pad_id: int, stats: PackStats
) -> Iterator[Row]:
    """Concatenate the samples' ids and cut them into rows of ``row_len``; pad the tail row."""
    buf: List[int] = []
    for ids, _ in samples:
        stats.samples += 1
        stats.tokens += len(ids)
        buf.extend(ids)
        while len(buf) >= row_len:
            row, buf = buf[:row_len], buf[row_len:]
            stats.rows += 1
            yield row, [1] * row_len
    if buf:
        pad = row_len - len(buf)
        stats.rows += 1
        stats.padding += pad
        yield buf + [pad_id] * pad, [1] * len(buf) + [0] * pad


def pack_sft(
    samples: Iterable[Tuple[List[int], List[int]]], row_len: int, pad_id: int, overlong: str, stats: PackStats
) -> Iterator[Row]:
    """Greedy packing of (ids, mask) samples into rows of ``row_len``, padding each row with pad_id / 0."""
    if overlong not in ("truncate", "reject"):
        raise ValueError(f"overlong must be 'truncate' or 'reject', not {overlong!r}")
    ids_row: List[int] = []
    mask_row: List[int] = []

    def flush() -> Row:
        pad = row_len - len(ids_row)
        stats.rows += 1
        stats.padding += pad
        return ids_row + [pad_id] * pad, mask_row + [0] * pad

    for ids, mask in samples:
        stats.samples += 1
        if len(ids) > row_len:
            stats.dropped_tokens += len(ids) - (row_len if overlong == "truncate" else 0)
            if overlong == "reject":
                stats.rejected += 1
                continue
            stats.truncated += 1
            ids, mask = ids[:row_len], mask[:row_len]
        if ids_row and len(ids_row) + len(ids) > row_len:
            yield flush()
            ids_row, mask_row = [], []
        ids_row += ids
        mask_row += mask
        stats.tokens += len(ids)
    if ids_row:
        yield flush()
